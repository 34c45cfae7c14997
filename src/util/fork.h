/* SPDX-License-Identifier: Apache-2.0 */
// Fork safety (docs/threading.md, "fork()"): what a process inherits through
// fork() must work in both processes afterwards.
//
// Every object that owns a lock, a connection or a thread enrols here. One
// pthread_atfork handler set, installed on the first enrolment, then:
//  - before fork (parent): takes every enrolled object's locks, so that no
//    lock is copied into the child in the middle of another thread's critical
//    section (the child has no such thread: it would stay locked forever).
//    The locks are tried, never waited for, in any order, all or none: when
//    one is busy, all are released and the round starts again after a short
//    back-off. No lock order to get wrong, no deadlock with a thread that
//    holds one lock and waits for another. After 10 s of busy rounds (a lock
//    held by the thread that called fork(), say from inside a loader) it
//    gives up and forks without the locks: the child hooks still run.
//  - then Hooks::fork_prepare() with every lock held but the late ones (the
//    sqlite pool closes its idle connections there: SQLite forbids carrying
//    one across fork), then the late locks, tried the same way;
//  - after fork, in the parent: fork_parent(), locks released;
//  - in the child: fork_child() with every lock held and one thread running
//    (drop inherited connections without sending anything on them, mark
//    threads and in-flight work of the parent as gone), then locks released.
// A hook must not take any enrolled lock (they are held), allocate under
// the expectation of another thread, or block.
#pragma once

#include <cstdint>
#include <new>
#include <vector>

namespace cm::fork {

// A lock to hold across fork(): its try_lock and unlock. A late lock is
// taken after the fork_prepare() hooks ran (they may need it: SQLite's
// allocator mutex, for closing connections).
struct Lock {
  void* obj;
  bool (*try_lock)(void*);
  void (*unlock)(void*);
  bool late = false;
};

// For std::mutex, SpinLock and anything with try_lock()/unlock().
template <class M>
Lock lock_of(M& m) {
  return {&m, [](void* p) { return static_cast<M*>(p)->try_lock(); }, [](void* p) { static_cast<M*>(p)->unlock(); }};
}

class Hooks {
 public:
  // Appends the locks to hold across fork (called with the enrolment list
  // locked, in the parent, before fork).
  virtual void fork_locks(std::vector<Lock>& out) { (void)out; }
  virtual void fork_prepare() {}
  virtual void fork_parent() {}
  virtual void fork_child() {}

 protected:
  ~Hooks() = default;
};

// Enrols hooks for its lifetime. Declare it as the owner's last member, or
// call enrol() at the end of the owner's constructor and leave() at the start
// of its destructor when the hooks use state the constructor body sets up or
// the destructor body tears down.
class Enrolment {
 public:
  Enrolment() = default;
  explicit Enrolment(Hooks* h) { enrol(h); }
  ~Enrolment() { leave(); }
  Enrolment(const Enrolment&) = delete;
  Enrolment& operator=(const Enrolment&) = delete;

  void enrol(Hooks* h);
  void leave();

 private:
  Hooks* hooks_ = nullptr;
};

// In a child hook: replaces a mutex, condition variable or thread object
// with a fresh one WITHOUT destroying the inherited copy. That copy may
// record threads of the parent (a waiter, a holder, a running thread) that
// the child does not have: destroying it would wait for them forever
// (glibc's pthread_cond_destroy), and a joinable std::thread's destructor
// terminates. The old object is overwritten, never used again.
template <class T>
void renew(T& obj) {
  ::new (&obj) T();
}

// How many fork() calls this process descends from since the library was
// loaded (bumped in every child, once the handlers are installed: the first
// call installs them). An object that recorded it can tell it was inherited.
uint64_t generation();

}  // namespace cm::fork
