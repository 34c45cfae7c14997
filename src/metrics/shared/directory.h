/* SPDX-License-Identifier: Apache-2.0 */
// A shared metrics directory (docs/multiprocess.md): its identity and lock,
// the families every worker registered, the worker slots (claimed, folded
// when their owner is dead, reused) and the aggregate view a scrape reads.
//
// Liveness needs no hook: a worker holds an open-file-description lock on
// its slot file for as long as it lives; the kernel drops it when the
// process dies, however it dies. Cross-process changes of the directory
// (claiming a slot, folding a dead one, adding a family) take the directory
// lock, an OFD lock on the layout file. Updating a value never does.
#pragma once

#include <cstdint>
#include <map>
#include <memory>
#include <string>
#include <vector>

#include "metrics/shared/layout.h"
#include "metrics/shared/slot_file.h"

namespace cm::shared {

// The sum of the slots' series by family and label values, with each gauge
// family's mode applied (docs/multiprocess.md, "Aggregation").
class Aggregate {
 public:
  explicit Aggregate(const std::vector<FamilyDef>* families) : families_(families) {}
  // Adds a slot's series. live: its owner is alive (live* and mostrecent
  // gauge modes and `all` count live workers only). worker: its index, for
  // mode `all`'s worker label.
  void add(const SlotContents& c, bool live, uint32_t worker);

  struct Key {
    uint32_t family;
    std::vector<std::string> values;
    int64_t worker;  // mode `all`: the worker; else -1
    bool operator<(const Key& o) const {
      if (family != o.family) return family < o.family;
      if (worker != o.worker) return worker < o.worker;
      return values < o.values;
    }
  };
  struct Value {
    uint32_t ndoubles = 0;
    uint8_t gauge_mode = kFamilyMode;  // the series' own mode (kept when folded)
    uint64_t set_ns = 0;               // mostrecent: when the value taken was set
    std::vector<uint64_t> payload;  // counters, histograms: summed words; gauges: [double, 0]
    bool seen = false;
  };
  const std::map<Key, Value>& series() const { return series_; }
  size_t unknown_families() const { return unknown_; }

 private:
  const std::vector<FamilyDef>* families_;
  std::map<Key, Value> series_;
  size_t unknown_ = 0;
};

class Directory {
 public:
  // Opens the directory at path, made (one level, mode 0755) when missing,
  // its layout file written when it is new or empty. Checks it before
  // changing anything: Error(CM_EINVAL) when path is not a directory or the
  // directory was made for another max_workers; CM_EUNAVAILABLE when it
  // cannot be written (read_only: read); CM_ECORRUPT, nothing touched, for
  // a directory of other files, another layout version or byte order, or a
  // damaged families or slot file. read_only: nothing is made or locked;
  // max_workers 0 takes the directory's own.
  static std::unique_ptr<Directory> open(const std::string& path, uint32_t max_workers, bool read_only = false);
  ~Directory();
  Directory(const Directory&) = delete;
  Directory& operator=(const Directory&) = delete;

  // Claims a free worker slot (docs/multiprocess.md, "Slots"): the first
  // slot no live process holds. A dead worker's slot is folded into
  // compact.cm first, so nothing it counted is lost and the number of files
  // stays bounded by max_workers. Error(CM_ELIMIT) when every slot is held
  // by a live process.
  std::unique_ptr<SlotFile> claim(const Geometry& g = {});

  // The id of family f, appending it to families.cm when it is new.
  // Error(CM_EEXIST) when a family of that name exists with another type,
  // label names, buckets or gauge mode.
  uint32_t family_id(const FamilyDef& f);

  // Everything the directory holds now, aggregated. Damaged slot files are
  // left out and named in *skipped (when not null).
  struct View {
    std::vector<FamilyDef> families;
    Aggregate agg{nullptr};
    uint32_t live_workers = 0;
    uint32_t slot_files = 0;
  };
  std::unique_ptr<View> read(std::vector<std::string>* skipped = nullptr) const;

  const std::string& path() const { return path_; }
  uint32_t max_workers() const { return max_workers_; }

  // In the child of fork(): the layout file's descriptor is shared with
  // the parent, and so would be its lock (OFD locks belong to the open
  // file description). Opens its own.
  void reopen_after_fork() noexcept;

  // Is slot i held by a live process (other than through this process's
  // own descriptor of it)? False when it has no file.
  bool slot_live(uint32_t i) const;

 private:
  Directory(std::string path, uint32_t max_workers) : path_(std::move(path)), max_workers_(max_workers) {}
  class Lock;
  std::string file(const std::string& name) const { return path_ + "/" + name; }
  std::vector<FamilyDef> read_families() const;
  void fold_dead(uint32_t slot, const SlotContents& dead, const SlotContents* compact);

  std::string path_;
  uint32_t max_workers_;
  int layout_fd_ = -1;
  bool read_only_ = false;
};

}  // namespace cm::shared
