// SPDX-License-Identifier: Apache-2.0
// A shared registry's aggregate as a snapshot (view.h).
#include "metrics/shared/view.h"

#include <algorithm>
#include <bit>
#include <cstring>
#include <map>

#include "core/error.h"
#include "metrics/shared/pool.h"
#include "util/text.h"

namespace cm::shared {

namespace {

// The family as the renderers read it (never registered anywhere).
std::unique_ptr<cm_family> transient_family(cm_registry& r, const FamilyDef& d) {
  auto f = std::make_unique<cm_family>();
  f->reg = &r;
  f->kind = static_cast<Kind>(d.kind);
  f->name = d.name;
  f->help = d.help;
  f->label_names = d.label_names;
  if (f->kind == Kind::Gauge && d.gauge_mode == static_cast<uint8_t>(GaugeMode::All))
    f->label_names.push_back("worker");
  f->bounds = d.bounds;
  f->gauge_mode = d.gauge_mode;
  for (double b : f->bounds) {
    OutBuf t;
    t.append_le(b);
    f->le_text.emplace_back(t.view());
  }
  return f;
}

void value_of(Kind kind, const std::vector<uint64_t>& p, SeriesValue& v) {
  v.kind = kind;
  v.double_part = 0;
  v.int_part = 0;
  v.sum = 0;
  v.count = 0;
  v.buckets.clear();
  if (kind == Kind::Histogram) {
    v.sum = std::bit_cast<double>(p[0]);
    v.buckets.assign(p.begin() + 1, p.end());
    for (uint64_t c : v.buckets) v.count += c;
  } else {
    v.double_part = std::bit_cast<double>(p[0]);
    v.int_part = static_cast<int64_t>(p[1]);
  }
}

// The _created of a series: this process's, when it has the series, else
// the registry's creation time.
double created_of(cm_registry& r, const std::string& family, const std::vector<std::string>& values) {
  auto it = r.families.find(family);
  if (it == r.families.end() || values.size() != it->second->label_names.size()) return r.created;
  std::vector<const char*> vp;
  for (const auto& v : values) vp.push_back(v.c_str());
  uint64_t h = hash_values(vp.data(), vp.size());
  if (cm_series* s = it->second->index.find(h, vp.data(), vp.size())) return s->created;
  return r.created;
}

}  // namespace

std::unique_ptr<PoolValues> PoolValues::of(cm_registry& r) {
  Directory* d = rendered_directory(r);
  if (!d) return nullptr;
  std::unique_ptr<PoolValues> p(new PoolValues());
  p->view_ = d->read();
  for (uint32_t i = 0; i < p->view_->families.size(); ++i) p->family_ids_.emplace(p->view_->families[i].name, i);
  return p;
}

bool PoolValues::get(const cm_series& s, SeriesValue& out) const {
  auto f = family_ids_.find(s.family->name);
  if (f == family_ids_.end()) return false;
  auto it = view_->agg.series().find(Aggregate::Key{f->second, s.values, -1});
  if (it == view_->agg.series().end()) return false;
  size_t want = s.kind == Kind::Histogram ? s.nbounds + 2 : 2;
  if (it->second.payload.size() != want) return false;
  value_of(s.kind, it->second.payload, out);
  return true;
}

Directory* rendered_directory(const cm_registry& r) {
  if (r.shared_view) return r.shared_view.get();
  if (r.shared && !r.shared->local_only()) return &r.shared->dir();
  return nullptr;
}

void snapshot_shared(cm_registry& r, SnapshotVisitor& vis, const NameFilter* names) {
  std::vector<std::string> skipped;
  std::unique_ptr<Directory::View> view = rendered_directory(r)->read(&skipped);
  if (!skipped.empty()) set_error(CM_ECORRUPT, "left out of the render: " + skipped.front());

  // The aggregate's series by family (its keys are ordered by family, then
  // worker, then values).
  struct Entry {
    const Aggregate::Key* key;
    const Aggregate::Value* value;
  };
  std::vector<std::vector<Entry>> by_family(view->families.size());
  for (const auto& [k, v] : view->agg.series())
    if (k.family < by_family.size()) by_family[k.family].push_back({&k, &v});
  std::vector<uint32_t> order(view->families.size());
  for (uint32_t i = 0; i < order.size(); ++i) order[i] = i;
  std::sort(order.begin(), order.end(),
            [&](uint32_t a, uint32_t b) { return view->families[a].name < view->families[b].name; });

  std::lock_guard<std::mutex> g(r.mu);
  std::unique_ptr<std::unordered_set<std::string>> keep;
  if (names && !names->empty()) keep = std::make_unique<std::unordered_set<std::string>>(names->begin(), names->end());
  vis.begin(r);
  SeriesValue val;
  for (uint32_t id : order) {
    const FamilyDef& d = view->families[id];
    if (d.kind > 2) continue;
    if (keep) {
      bool any = false;
      for (const auto& n : sample_names_of(static_cast<Kind>(d.kind), d.name)) any = any || keep->count(n);
      if (!any) continue;
    }
    std::unique_ptr<cm_family> f = transient_family(r, d);
    if (!vis.family(*f)) continue;
    std::vector<Entry>& es = by_family[id];
    // Mode `all`: by label values, then worker (the key orders worker first).
    std::stable_sort(es.begin(), es.end(), [](const Entry& a, const Entry& b) {
      if (a.key->values != b.key->values) return a.key->values < b.key->values;
      return a.key->worker < b.key->worker;
    });
    for (const Entry& e : es) {
      cm_series s;
      s.family = f.get();
      s.kind = f->kind;
      s.values = e.key->values;
      if (e.key->worker >= 0) s.values.push_back(std::to_string(e.key->worker));
      if (s.values.size() != f->label_names.size()) continue;
      s.bounds = f->bounds.data();
      s.nbounds = static_cast<uint32_t>(f->bounds.size());
      s.created = created_of(r, d.name, e.key->values);
      size_t want = f->kind == Kind::Histogram ? f->bounds.size() + 2 : 2;
      if (e.value->payload.size() != want) continue;
      value_of(f->kind, e.value->payload, val);
      vis.series(*f, s, val);
    }
    vis.family_end(*f);
  }
  vis.end(r);
}

}  // namespace cm::shared
