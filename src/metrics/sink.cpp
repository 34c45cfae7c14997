// SPDX-License-Identifier: Apache-2.0
// The sink host: the interval thread, the flushes through the snapshot walk,
// and what each sink was last given (sink.h).
#include "metrics/sink.h"

#include <algorithm>

namespace cm {

SeriesValue SinkSeries::delta() const {
  const SeriesValue* l = last();
  if (!l || value.kind == Kind::Gauge || l->kind != value.kind || !(tracked->last_created == created)) return value;
  SeriesValue d;
  d.kind = value.kind;
  if (value.kind == Kind::Histogram) {
    if (l->buckets.size() != value.buckets.size()) return value;
    d.buckets.resize(value.buckets.size());
    for (size_t i = 0; i < value.buckets.size(); ++i) {
      if (value.buckets[i] < l->buckets[i]) return value;  // reset since
      d.buckets[i] = value.buckets[i] - l->buckets[i];
    }
    d.count = value.count - l->count;
    d.sum = value.sum - l->sum;
    return d;
  }
  if (value.value() < l->value()) return value;  // reset since
  d.double_part = value.double_part - l->double_part;
  d.int_part = static_cast<int64_t>(static_cast<uint64_t>(value.int_part) - static_cast<uint64_t>(l->int_part));
  return d;
}

namespace {

// The sink was given s: its value is what the next delta starts from.
void remember(SinkSeries& s) {
  s.tracked->last = std::move(s.value);
  s.tracked->last_created = s.created;
  s.tracked->has_last = true;
}

bool changed(const SinkTracked& t, const SeriesValue& v, double created) {
  return !t.has_last || !v.same(t.last) || !(t.last_created == created);
}

// The walk of one flush: the series of the families the sink wants, all or
// only those changed since it was last given them. Registry mutex.
class Collect final : public SnapshotVisitor {
 public:
  Collect(Sink& sink, std::unordered_map<const cm_series*, std::shared_ptr<SinkTracked>>& tracked,
          std::vector<SinkSeries>& out)
      : sink_(sink), all_(sink.want() == Sink::Want::All), tracked_(tracked), out_(out) {}
  bool family(const cm_family& f) override { return sink_.wants(f); }
  void series(const cm_family& f, const cm_series& s, const SeriesValue& v) override {
    auto it = tracked_.find(&s);
    if (it == tracked_.end()) return;
    if (all_ || changed(*it->second, v, s.created)) out_.push_back({&f, it->second, v, s.created, false});
  }

 private:
  Sink& sink_;
  bool all_;
  std::unordered_map<const cm_series*, std::shared_ptr<SinkTracked>>& tracked_;
  std::vector<SinkSeries>& out_;
};

}  // namespace

SinkHost::SinkHost(cm_registry& r) : r_(r) { fork_.enrol(this); }

SinkHost::~SinkHost() {
  fork_.leave();
  {
    std::lock_guard<std::mutex> g(mu_);
    stopping_ = true;
  }
  cv_.notify_all();
  if (thread_.joinable()) thread_.join();
  std::lock_guard<std::mutex> fl(flush_mu_);
  for (auto& e : entries_) {
    if (e->inherited) continue;  // its outlet stays with the parent
    try {
      flush(*e);
    } catch (...) {
      // Nobody to tell: the registry is going away.
    }
  }
}

void SinkHost::track(Entry& e, cm_series& s) {
  if (!e.sink->wants(*s.family)) return;
  auto t = std::make_shared<SinkTracked>();
  t->values = s.values;
  SinkSeed seed;
  e.sink->series_created(s, seed);
  if (seed.set) {
    t->has_last = true;
    t->last = std::move(seed.value);
    t->last_created = seed.created;
  }
  e.tracked[&s] = std::move(t);
}

void SinkHost::family_registered(cm_family& f) noexcept {
  for (auto& e : entries_) e->sink->family_registered(f);
}

void SinkHost::series_created(cm_series& s) noexcept {
  for (auto& e : entries_) {
    try {
      track(*e, s);
    } catch (...) {
      // Out of memory: this sink never sees the series.
    }
  }
}

void SinkHost::series_removed(cm_series& s) noexcept {
  for (auto& e : entries_) {
    try {
      auto it = e->tracked.find(&s);
      if (it == e->tracked.end()) continue;
      std::shared_ptr<SinkTracked> t = std::move(it->second);
      e->tracked.erase(it);
      SeriesValue v = read_series(s);
      if (changed(*t, v, s.created)) e->retired.push_back({s.family, std::move(t), std::move(v), s.created, true});
    } catch (...) {
      // Out of memory: the last value since the previous flush is not given.
    }
  }
}

std::vector<Sink*> SinkHost::sinks() const {
  std::vector<Sink*> out;
  for (const auto& e : entries_) out.push_back(e->sink.get());
  return out;
}

SinkHost::Entry* SinkHost::find(const Sink* s) {
  for (auto& e : entries_)
    if (e->sink.get() == s) return e.get();
  return nullptr;
}

void SinkHost::flush(Entry& e) {
  if (e.sink->collect()) run_collectors(r_);
  std::vector<SinkSeries> batch;
  size_t nretired = 0;
  {
    std::lock_guard<std::mutex> g(r_.mu);
    // Removed series first: a live series of the same labels (a cache
    // reopened under its name) comes after, and wins.
    batch = std::move(e.retired);
    e.retired.clear();
    nretired = batch.size();
    Collect walk(*e.sink, e.tracked, batch);
    snapshot_locked(r_, walk);
  }
  if (batch.empty()) return e.sink->flush_empty();
  try {
    e.sink->flush(batch);
  } catch (...) {
    // What the sink marks delivered is remembered as given; the rest (and
    // the removed series' final values) stays pending for the next flush.
    std::lock_guard<std::mutex> g(r_.mu);
    std::vector<SinkSeries> pending;
    for (size_t i = 0; i < batch.size(); ++i) {
      if (batch[i].delivered)
        remember(batch[i]);
      else if (i < nretired)
        pending.push_back(std::move(batch[i]));
    }
    e.retired.insert(e.retired.begin(), std::make_move_iterator(pending.begin()),
                     std::make_move_iterator(pending.end()));
    throw;
  }
  std::lock_guard<std::mutex> g(r_.mu);
  for (SinkSeries& s : batch) remember(s);
}

void SinkHost::run() {
  std::unique_lock<std::mutex> lk(mu_);
  while (!stopping_) {
    auto next = Clock::time_point::max();
    for (auto& e : entries_)
      if (e->interval.count() > 0 && !e->inherited) next = std::min(next, e->due);
    if (next == Clock::time_point::max())
      cv_.wait(lk);
    else
      cv_.wait_until(lk, next);
    if (stopping_) break;
    auto now = Clock::now();
    std::vector<std::shared_ptr<Entry>> due;
    for (auto& e : entries_) {
      if (e->interval.count() > 0 && !e->inherited && e->due <= now) {
        e->due = now + e->interval;
        due.push_back(e);
      }
    }
    lk.unlock();
    for (auto& e : due) {
      std::lock_guard<std::mutex> fl(flush_mu_);
      try {
        flush(*e);
      } catch (...) {
        e->sink->background_failed();
      }
    }
    lk.lock();
  }
}

// In the child: the thread and the flush in progress (if any) were the
// parent's, and so are the sinks' outlets. The thread object, the condition
// variable and the flush mutex start afresh (never destroyed: they record
// the parent's threads); a sink added in the child starts a thread here.
void SinkHost::fork_child() {
  for (auto& e : entries_) e->inherited = true;
  fork::renew(thread_);
  fork::renew(cv_);
  fork::renew(flush_mu_);
}

Sink* add_sink_locked(cm_registry& r, std::unique_ptr<Sink> sink, unsigned interval_ms) {
  if (!r.sinks) r.sinks = std::make_unique<SinkHost>(r);
  SinkHost& h = *r.sinks;
  auto e = std::make_shared<SinkHost::Entry>();
  e->sink = std::move(sink);
  e->interval = std::chrono::milliseconds(interval_ms);
  for (auto& [name, f] : r.families) {
    e->sink->family_registered(*f);
    for (auto& s : f->series) h.track(*e, *s);
  }
  Sink* out = e->sink.get();
  {
    std::lock_guard<std::mutex> g(h.mu_);
    e->due = SinkHost::Clock::now() + e->interval;
    h.entries_.push_back(std::move(e));
    if (interval_ms > 0 && !h.thread_.joinable()) h.thread_ = std::thread([&h] { h.run(); });
  }
  h.cv_.notify_all();
  return out;
}

void flush_sink(cm_registry& r, Sink& sink) {
  std::shared_ptr<SinkHost::Entry> e;
  SinkHost* h;
  {
    std::lock_guard<std::mutex> g(r.mu);
    h = r.sinks.get();
    if (h)
      for (auto& x : h->entries_)
        if (x->sink.get() == &sink) e = x;
  }
  if (!e) return;
  std::lock_guard<std::mutex> fl(h->flush_mu_);
  h->flush(*e);
}

bool remove_sink(cm_registry& r, Sink* sink) noexcept {
  SinkHost* h;
  {
    std::lock_guard<std::mutex> g(r.mu);
    h = r.sinks.get();
    if (!h || !h->find(sink)) return false;
  }
  std::shared_ptr<SinkHost::Entry> e;
  {
    std::lock_guard<std::mutex> fl(h->flush_mu_);
    {
      std::lock_guard<std::mutex> g(r.mu);
      std::lock_guard<std::mutex> g2(h->mu_);
      auto it = std::find_if(h->entries_.begin(), h->entries_.end(), [&](const auto& x) { return x->sink.get() == sink; });
      if (it == h->entries_.end()) return false;
      e = std::move(*it);
      h->entries_.erase(it);
    }
    try {
      h->flush(*e);
    } catch (...) {
      // Removed anyway: the caller asked for it.
    }
  }
  return true;  // e (and the sink) destroyed here, no lock held
}

}  // namespace cm
