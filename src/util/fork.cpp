// SPDX-License-Identifier: Apache-2.0
// Fork safety: the enrolment list and the pthread_atfork handlers. See fork.h.
#include "util/fork.h"

#include <pthread.h>
#include <sched.h>

#include <algorithm>
#include <atomic>
#include <chrono>
#include <mutex>
#include <thread>

namespace cm::fork {
namespace {

struct State {
  std::mutex mu;  // the enrolment list; held from prepare to parent/child
  std::vector<Hooks*> hooks;
  std::vector<Lock> held;  // taken in prepare, released after fork
  bool locked = false;     // false: prepare gave up taking them
};

// Never destroyed: objects may leave during static destruction.
State& state() {
  static State* s = new State;
  return *s;
}

std::atomic<uint64_t> g_generation{0};
constexpr auto kGiveUp = std::chrono::seconds(10);

void release(State& s) {
  for (size_t i = s.held.size(); i-- > 0;) s.held[i].unlock(s.held[i].obj);
  s.held.clear();
  s.locked = false;
  s.mu.unlock();
}

// Tries the locks [from, held.size()) in order; true when all were taken.
// On failure releases what it took of them and shrinks held to `from`.
bool try_from(State& s, size_t from) {
  size_t i = from;
  while (i < s.held.size() && s.held[i].try_lock(s.held[i].obj)) ++i;
  if (i == s.held.size()) return true;
  while (i-- > from) s.held[i].unlock(s.held[i].obj);
  s.held.resize(from);
  return false;
}

void prepare() {
  State& s = state();
  const auto give_up = std::chrono::steady_clock::now() + kGiveUp;
  std::vector<Lock> all;
  for (int round = 0;; ++round) {
    s.mu.lock();
    all.clear();
    for (Hooks* h : s.hooks) h->fork_locks(all);
    // The early locks, the prepare hooks, then the late locks.
    s.held.clear();
    for (const Lock& l : all)
      if (!l.late) s.held.push_back(l);
    if (try_from(s, 0)) {
      for (Hooks* h : s.hooks) h->fork_prepare();
      const size_t early = s.held.size();
      for (const Lock& l : all)
        if (l.late) s.held.push_back(l);
      if (try_from(s, early)) {
        s.locked = true;
        return;
      }
      while (!s.held.empty()) {
        s.held.back().unlock(s.held.back().obj);
        s.held.pop_back();
      }
    }
    if (std::chrono::steady_clock::now() >= give_up) return;  // fork unlocked (fork.h), s.mu held
    s.mu.unlock();
    // Busy: let the holder finish its section (microseconds, usually).
    if (round < 64)
      sched_yield();
    else
      std::this_thread::sleep_for(std::chrono::microseconds(std::min(round, 1000)));
  }
}

void parent() {
  State& s = state();
  if (s.locked)
    for (Hooks* h : s.hooks) h->fork_parent();
  release(s);
}

void child() {
  State& s = state();
  g_generation.fetch_add(1, std::memory_order_relaxed);
  for (Hooks* h : s.hooks) h->fork_child();
  release(s);
}

void install() {
  static std::once_flag once;
  std::call_once(once, [] { pthread_atfork(prepare, parent, child); });
}

}  // namespace

void Enrolment::enrol(Hooks* h) {
  install();
  State& s = state();
  std::lock_guard<std::mutex> g(s.mu);
  s.hooks.push_back(h);
  hooks_ = h;
}

void Enrolment::leave() {
  if (!hooks_) return;
  State& s = state();
  std::lock_guard<std::mutex> g(s.mu);
  auto it = std::find(s.hooks.begin(), s.hooks.end(), hooks_);
  if (it != s.hooks.end()) s.hooks.erase(it);
  hooks_ = nullptr;
}

uint64_t generation() {
  install();  // a caller that compares generations needs the child handler
  return g_generation.load(std::memory_order_relaxed);
}

}  // namespace cm::fork
