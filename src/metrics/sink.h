/* SPDX-License-Identifier: Apache-2.0 */
// Sinks: the outlets a registry hands its values to (persistence to SQLite;
// the push exporters). A registry owns one SinkHost, created with its first
// sink: it runs the flushes (on an interval thread, on request, and a last one
// when the registry is freed) through the snapshot walk (snapshot.h), and
// remembers per sink and series what the sink was last given, so that a sink
// gets only what changed and can ask for deltas (docs/metrics.md, "Sinks").
//
// Threads and locks. A flush takes the host's flush mutex (one flush of any
// sink of the host at a time), then the registry mutex for the walk only;
// Sink::flush() runs with the flush mutex held and NO registry lock. The
// registry's events (family registered, series created and removed) reach the
// sinks under the registry mutex. Lock order: flush mutex, registry mutex,
// host mutex (the thread's schedule), cell lock.
//
// fork(): a sink and its interval flushes stay with the process that added
// it. In a child, the sinks inherited are never flushed by the host (no
// interval flush, no last flush at free) and the parent's thread is neither
// waited for nor joined; flush_sink() still calls such a sink, which decides
// (persistence refuses with CM_ESTATE). A sink added in the child is the
// child's own: its host starts a thread there.
#pragma once

#include <chrono>
#include <condition_variable>
#include <memory>
#include <mutex>
#include <string>
#include <thread>
#include <unordered_map>
#include <vector>

#include "metrics/snapshot.h"
#include "util/fork.h"

namespace cm {

// What the host remembers of one series for one sink. Registry mutex, except
// while the sink's flush runs (the flush mutex keeps the host off it then).
struct SinkTracked {
  std::vector<std::string> values;  // the label values (a copy: outlives the series)
  bool has_last = false;            // the sink was given a value (or seeded)
  SeriesValue last;                 // what it was last given
  double last_created = 0;
};

// One series in a flush.
struct SinkSeries {
  const cm_family* family = nullptr;  // lives as long as the registry
  std::shared_ptr<SinkTracked> tracked;
  SeriesValue value;   // now
  double created = 0;  // now
  bool removed = false;  // the series is gone: this is its final value, given once
  // Set by a sink whose flush throws after handing over part of the batch
  // (a push exporter whose third datagram failed): the host remembers these
  // as given and keeps the rest pending. Ignored when flush() returns.
  bool delivered = false;

  const std::vector<std::string>& values() const { return tracked->values; }
  // What the sink was last given; nullptr when never.
  const SeriesValue* last() const { return tracked->has_last ? &tracked->last : nullptr; }
  // Since the last flush the sink took: counters and histograms the increase
  // (each bucket, the count and the sum); the whole value when there is no
  // last one or the series was reset since (created changed, or a count went
  // down). A gauge's delta is its value.
  SeriesValue delta() const;
};

// Seeds the host's memory of a new series (Sink::series_created): the host
// then treats `value` as what the sink was last given (persistence: the row
// the file holds, so an unchanged restored series is not written again).
struct SinkSeed {
  bool set = false;
  SeriesValue value;
  double created = 0;
};

class Sink {
 public:
  virtual ~Sink() = default;

  // Which series a flush hands over: Changed (value or created time differs
  // from what the sink was last given, and the final values of removed
  // series) or All (every series of the families it wants, every flush).
  enum class Want { Changed, All };
  virtual Want want() const noexcept { return Want::Changed; }
  // Run the collectors (gauges mirroring backend state) before each flush.
  virtual bool collect() const noexcept { return false; }

  // Events, under the registry mutex: fast, no I/O, no throw, no call into
  // the registry or the host. wants() is asked again at every flush.
  virtual bool wants(const cm_family& f) noexcept {
    (void)f;
    return true;
  }
  virtual void family_registered(cm_family& f) noexcept { (void)f; }
  // s is new and not yet published (no thread updates it): the sink may
  // restore a value into it (write_series) and seed the host's memory.
  virtual void series_created(cm_series& s, SinkSeed& seed) noexcept {
    (void)s;
    (void)seed;
  }

  // Hands over the series of one flush (never empty), in family order, the
  // removed series first. On the interval thread or the thread calling
  // flush_sink() / freeing the registry; never two flushes of one host at
  // once; no registry lock held, so it may do I/O. It must not add, remove or
  // flush sinks of this host (deadlock), nor keep references into batch.
  // Throwing leaves the host's memory as it was for every series not marked
  // `delivered`: the next flush hands the same changes again (plus newer
  // ones), so a delta is neither lost nor given twice.
  virtual void flush(std::vector<SinkSeries>& batch) = 0;
  // A flush found nothing to hand over (same threads and rules as flush();
  // may throw, which the caller of the flush gets).
  virtual void flush_empty() {}
  // A flush on the interval thread threw (nobody else to tell).
  virtual void background_failed() noexcept {}
};

class SinkHost final : private fork::Hooks {
 public:
  explicit SinkHost(cm_registry& r);
  // Stops the thread, flushes every sink once more (errors swallowed; not the
  // sinks inherited through fork()), then destroys the sinks.
  ~SinkHost();
  SinkHost(const SinkHost&) = delete;
  SinkHost& operator=(const SinkHost&) = delete;

  // Registry events (called by the registry, under its mutex).
  void family_registered(cm_family& f) noexcept;
  void series_created(cm_series& s) noexcept;
  // s is about to be removed: its values are still readable.
  void series_removed(cm_series& s) noexcept;

  // The sinks, in the order added. Registry mutex.
  std::vector<Sink*> sinks() const;

 private:
  friend Sink* add_sink_locked(cm_registry&, std::unique_ptr<Sink>, unsigned);
  friend void flush_sink(cm_registry&, Sink&);
  friend bool remove_sink(cm_registry&, Sink*) noexcept;
  using Clock = std::chrono::steady_clock;
  struct Entry {
    std::unique_ptr<Sink> sink;
    std::chrono::milliseconds interval{0};  // 0: no interval flushes
    bool inherited = false;  // added before a fork() this process is the child of
    Clock::time_point due;                  // host mutex
    // Registry mutex (see SinkTracked):
    std::unordered_map<const cm_series*, std::shared_ptr<SinkTracked>> tracked;
    std::vector<SinkSeries> retired;  // final values of removed series, for the next flush
  };

  void track(Entry& e, cm_series& s);
  void flush(Entry& e);  // flush mutex held
  void run();
  Entry* find(const Sink* s);  // registry mutex

  void fork_locks(std::vector<fork::Lock>& out) override { out.push_back(fork::lock_of(mu_)); }
  void fork_child() override;

  cm_registry& r_;
  std::mutex flush_mu_;
  std::vector<std::shared_ptr<Entry>> entries_;  // registry mutex and host mutex to change
  std::mutex mu_;  // the thread's schedule: entries' due, stopping_
  std::condition_variable cv_;
  bool stopping_ = false;
  std::thread thread_;
  fork::Enrolment fork_;
};

// Adds a sink to r (its host is created with the first one), replaying
// family_registered and series_created for what r holds already. interval_ms:
// flushed every so often from the host's thread (0: only by flush_sink and at
// free). Requires the registry mutex (callers check their preconditions under
// it); the sink is owned by the host from then on. Throws std::bad_alloc.
Sink* add_sink_locked(cm_registry& r, std::unique_ptr<Sink> sink, unsigned interval_ms);
// Flushes one sink of r now, on the calling thread; takes the host's flush
// mutex (waits for a flush in progress). Throws what the sink throws.
void flush_sink(cm_registry& r, Sink& sink);
// Flushes sink once more (errors swallowed), then removes and destroys it.
// False when r has no such sink.
bool remove_sink(cm_registry& r, Sink* sink) noexcept;

}  // namespace cm
