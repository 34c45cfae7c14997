// SPDX-License-Identifier: Apache-2.0
// The StatsD / DogStatsD exporter: statsd://host:port over UDP and
// statsd+unix:///path over a Unix datagram socket. The wire format, the
// naming rules and what a receiver makes of histograms: docs/exporters.md.
#include <netdb.h>
#include <poll.h>
#include <sys/socket.h>
#include <sys/un.h>
#include <unistd.h>

#include <algorithm>
#include <cerrno>
#include <chrono>
#include <cmath>
#include <cstdio>
#include <cstring>
#include <string>
#include <vector>

#include "core/error.h"
#include "export/exporter.h"
#include "metrics/registry.h"
#include "util/text.h"

namespace cm {

namespace {

constexpr std::string_view kSchemes[] = {"statsd", "statsd+unix"};
constexpr std::string_view kOwnOptions[] = {"prefix", "tags", "max_packet"};

// A metric name: letters, digits, '_', '-' and '.' pass; anything else
// (':', '|', '@', '#', ',', spaces, newlines, bytes above 127) becomes '_'.
void append_name(std::string& out, std::string_view s, bool keep_dots) {
  for (unsigned char c : s) {
    bool ok = (c >= 'a' && c <= 'z') || (c >= 'A' && c <= 'Z') || (c >= '0' && c <= '9') || c == '_' ||
              c == '-' || (keep_dots && c == '.');
    out.push_back(ok ? static_cast<char>(c) : '_');
  }
}

// A DogStatsD tag key (as a name, '/' allowed too) or value (anything but
// the separators '|', ',', '#', '@' and control characters; ':' is fine in a
// value, the tag splits at its first ':').
void append_tag_part(std::string& out, std::string_view s, bool is_value) {
  for (unsigned char c : s) {
    bool ok;
    if (is_value)
      ok = c >= 0x20 && c != 0x7f && c != '|' && c != ',' && c != '#' && c != '@';
    else
      ok = (c >= 'a' && c <= 'z') || (c >= 'A' && c <= 'Z') || (c >= '0' && c <= '9') || c == '_' || c == '-' ||
           c == '.' || c == '/';
    out.push_back(ok ? static_cast<char>(c) : '_');
  }
}

void append_number(std::string& out, double v) {
  char buf[40];
  out.append(buf, format_double(v, buf));
}

// The sample rate 1/weight in plain decimal with 17 significant digits:
// Etsy's statsd reads the rate with /^@([\d.]+)/, so "5e-05" would count as 5.
void append_rate(std::string& out, uint64_t weight) {
  int digits = 1;
  for (uint64_t w = weight; w >= 10; w /= 10) ++digits;
  char buf[64];
  int n = std::snprintf(buf, sizeof buf, "%.*f", 16 + digits, 1.0 / static_cast<double>(weight));
  if (n <= 0 || static_cast<size_t>(n) >= sizeof buf) n = std::snprintf(buf, sizeof buf, "%.40f", 1.0 / static_cast<double>(weight));
  while (n > 2 && buf[n - 1] == '0') --n;  // "0.5000" -> "0.5"
  out.append(buf, static_cast<size_t>(n));
}

class StatsdExporter final : public Exporter {
 public:
  StatsdExporter(cm_registry& r, ExporterCommon c, const Uri& uri) : Exporter(r, std::move(c)) {
    const Options& o = uri.query;
    prefix_ = o.get("prefix", "");
    std::string tags = o.get("tags", "dogstatsd");
    if (tags == "dogstatsd")
      dogstatsd_ = true;
    else if (tags == "none")
      dogstatsd_ = false;
    else
      throw Error(CM_EINVAL, "statsd exporter: option tags= must be dogstatsd or none, got \"" + tags + "\"");
    max_packet_ = static_cast<size_t>(o.get_int("max_packet", 1432, 64, 65507));
    if (uri.scheme == "statsd+unix")
      open_unix(uri);
    else
      open_udp(uri);
  }
  ~StatsdExporter() override {
    if (fd_ >= 0) ::close(fd_);
  }

  bool collect() const noexcept override { return true; }

 protected:
  void send(std::vector<SinkSeries>& batch) override {
    // Each series' lines stay together in one datagram unless they alone
    // exceed max_packet: on a failed send, the series of the datagrams
    // that went out are delivered and the rest stays pending.
    std::vector<std::string> packets;
    std::vector<size_t> last_packet(batch.size(), SIZE_MAX);  // SIZE_MAX: no lines
    std::string block, line;
    for (size_t i = 0; i < batch.size(); ++i) {
      block.clear();
      lines_of(batch[i], block);
      if (block.empty()) continue;
      if (!packets.empty() && packets.back().size() + 1 + block.size() <= max_packet_) {
        packets.back().push_back('\n');
        packets.back().append(block);
      } else if (block.size() <= max_packet_) {
        packets.push_back(block);
      } else {
        // Too big for one datagram: line by line (a single line over
        // max_packet goes alone; the receiver may drop it).
        size_t pos = 0;
        bool fresh = true;
        while (pos < block.size()) {
          size_t nl = block.find('\n', pos);
          if (nl == std::string::npos) nl = block.size();
          std::string_view l(block.data() + pos, nl - pos);
          if (!fresh && packets.back().size() + 1 + l.size() <= max_packet_) {
            packets.back().push_back('\n');
            packets.back().append(l);
          } else {
            packets.emplace_back(l);
          }
          fresh = false;
          pos = nl + 1;
        }
      }
      last_packet[i] = packets.size() - 1;
    }
    auto deadline = std::chrono::steady_clock::now() + std::chrono::milliseconds(common().timeout_ms);
    for (size_t k = 0; k < packets.size(); ++k) {
      try {
        send_one(packets[k], deadline);
      } catch (...) {
        for (size_t i = 0; i < batch.size(); ++i) batch[i].delivered = last_packet[i] == SIZE_MAX || last_packet[i] < k;
        throw;
      }
    }
  }

 private:
  void open_udp(const Uri& uri) {
    const std::string& loc = uri.location;
    size_t colon = loc.rfind(':');
    if (loc.empty() || colon == std::string::npos || colon + 1 == loc.size())
      throw Error(CM_EINVAL, "statsd exporter: \"" + uri.text + "\" needs host:port");
    std::string host = loc.substr(0, colon), port = loc.substr(colon + 1);
    if (host.size() >= 2 && host.front() == '[' && host.back() == ']') host = host.substr(1, host.size() - 2);
    for (char c : port)
      if (c < '0' || c > '9') throw Error(CM_EINVAL, "statsd exporter: port \"" + port + "\" is not a number");
    addrinfo hints{};
    hints.ai_socktype = SOCK_DGRAM;
    hints.ai_family = AF_UNSPEC;
    addrinfo* res = nullptr;
    int rc = getaddrinfo(host.c_str(), port.c_str(), &hints, &res);
    if (rc != 0 || !res)
      throw Error(CM_EUNAVAILABLE, "statsd exporter: cannot resolve \"" + host + "\": " + gai_strerror(rc));
    std::memcpy(&addr_, res->ai_addr, res->ai_addrlen);
    addr_len_ = res->ai_addrlen;
    int family = res->ai_family;
    freeaddrinfo(res);
    make_socket(family);
  }

  void open_unix(const Uri& uri) {
    const std::string& path = uri.location;
    sockaddr_un un{};
    if (path.empty() || path.front() != '/')
      throw Error(CM_EINVAL, "statsd exporter: \"" + uri.text + "\" needs an absolute socket path (statsd+unix:///path)");
    if (path.size() >= sizeof un.sun_path)
      throw Error(CM_EINVAL, "statsd exporter: socket path \"" + path + "\" is longer than " +
                                 std::to_string(sizeof un.sun_path - 1) + " bytes");
    un.sun_family = AF_UNIX;
    std::memcpy(un.sun_path, path.c_str(), path.size() + 1);
    std::memcpy(&addr_, &un, sizeof un);
    addr_len_ = sizeof un;
    make_socket(AF_UNIX);
  }

  void make_socket(int family) {
    fd_ = ::socket(family, SOCK_DGRAM | SOCK_CLOEXEC | SOCK_NONBLOCK, 0);
    if (fd_ < 0) throw Error(CM_EUNAVAILABLE, std::string("statsd exporter: socket: ") + std::strerror(errno));
  }

  // One datagram; waits (until deadline) while the socket's buffer is full.
  void send_one(const std::string& p, std::chrono::steady_clock::time_point deadline) {
    for (;;) {
      ssize_t n = ::sendto(fd_, p.data(), p.size(), MSG_NOSIGNAL, reinterpret_cast<const sockaddr*>(&addr_), addr_len_);
      if (n >= 0) return;
      int err = errno;
      if (err == EINTR) continue;
      if (err != EAGAIN && err != EWOULDBLOCK && err != ENOBUFS)
        throw Error(CM_EUNAVAILABLE, "statsd exporter \"" + name() + "\": send: " + std::strerror(err));
      auto left = std::chrono::duration_cast<std::chrono::milliseconds>(deadline - std::chrono::steady_clock::now());
      if (left.count() <= 0)
        throw Error(CM_ETIMEOUT, "statsd exporter \"" + name() + "\": the receiver took no data for " +
                                     std::to_string(common().timeout_ms) + " ms");
      // POLLOUT says nothing of a Unix receiver's full queue (the socket is
      // not connected): retry every 2 ms instead of spinning.
      ::poll(nullptr, 0, static_cast<int>(std::min<int64_t>(left.count(), 2)));
    }
  }

  // The name of a series' lines: prefix, the family name, and with
  // tags=none the labels folded in (".label.value" each, empty values left out).
  void name_of(const SinkSeries& s, std::string_view suffix, std::string& out) {
    if (!prefix_.empty()) {
      append_name(out, prefix_, true);
      if (out.back() != '.') out.push_back('.');
    }
    append_name(out, s.family->name, false);
    out.append(suffix);
    if (!dogstatsd_) {
      for (const LabelPair& l : labels_) {
        if (l.value.empty()) continue;
        out.push_back('.');
        append_name(out, l.name, false);
        out.push_back('.');
        append_name(out, l.value, false);
      }
    }
  }

  void tags(std::string& out) {
    if (!dogstatsd_) return;
    bool first = true;
    for (const LabelPair& l : labels_) {
      if (l.value.empty()) continue;
      out.append(first ? "|#" : ",");
      first = false;
      append_tag_part(out, l.name, false);
      out.push_back(':');
      append_tag_part(out, l.value, true);
    }
  }

  void line(const SinkSeries& s, std::string_view suffix, double v, std::string_view type, uint64_t weight,
            std::string& out) {
    if (!out.empty()) out.push_back('\n');
    name_of(s, suffix, out);
    out.push_back(':');
    append_number(out, v);
    out.push_back('|');
    out.append(type);
    if (weight > 1) {
      out.append("|@");
      append_rate(out, weight);
    }
    tags(out);
  }

  // The lines of one series (nothing when its change sends nothing).
  void lines_of(const SinkSeries& s, std::string& out) {
    labels_of(reg_, s, labels_);
    const cm_family& f = *s.family;
    switch (f.kind) {
      case Kind::Counter: {
        double d = s.delta().value();
        if (d != 0 && std::isfinite(d)) line(s, "", d, "c", 1, out);
        break;
      }
      case Kind::Gauge: {
        double v = s.value.value();
        if (!std::isfinite(v)) break;  // StatsD has no NaN or Inf
        // A signed gauge value is a relative change in StatsD: a negative
        // value is sent as a set to 0 and a decrement, in one datagram.
        if (v < 0 || std::signbit(v)) line(s, "", 0, "g", 1, out);
        if (v != 0 || !std::signbit(v)) line(s, "", v, "g", 1, out);
        break;
      }
      case Kind::Histogram: {
        SeriesValue d = s.delta();
        if (d.count == 0) break;
        // One timer sample per non-empty bucket at its representative value,
        // weighted by its count through the sample rate; then the exact sum
        // and count as counters.
        const std::vector<double>& b = f.bounds;
        for (size_t i = 0; i < d.buckets.size(); ++i) {
          if (d.buckets[i] == 0) continue;
          double rep;
          if (i == b.size())
            rep = b.empty() ? d.sum / static_cast<double>(d.count) : b.back();
          else if (i == 0)
            rep = b[0] > 0 ? b[0] / 2 : b[0];
          else
            rep = (b[i - 1] + b[i]) / 2;
          line(s, "", rep, "ms", d.buckets[i], out);
        }
        if (std::isfinite(d.sum) && d.sum != 0) line(s, "_sum", d.sum, "c", 1, out);
        line(s, "_count", static_cast<double>(d.count), "c", 1, out);
        break;
      }
    }
  }

  std::string prefix_;
  bool dogstatsd_ = true;
  size_t max_packet_ = 1432;
  int fd_ = -1;
  sockaddr_storage addr_{};
  socklen_t addr_len_ = 0;
  std::vector<LabelPair> labels_;  // the series being written (flush mutex)
};

std::unique_ptr<Exporter> make(cm_registry& r, const Uri& uri) {
  ExporterCommon c = common_options(uri.query, kOwnOptions, uri.scheme);
  return std::make_unique<StatsdExporter>(r, std::move(c), uri);
}

}  // namespace

const ExporterSpec& statsd_exporter_spec() {
  static constexpr ExporterSpec kSpec{"statsd", kSchemes, make};
  return kSpec;
}

}  // namespace cm
