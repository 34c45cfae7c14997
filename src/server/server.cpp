// SPDX-License-Identifier: Apache-2.0
// The embedded HTTP endpoint: libmicrohttpd in its own polling thread(s),
// serving a registry's renderings. It knows the registry's render functions
// and its health checks, nothing else. See include/cachemeter/server.h.
#include "server/server.h"
#include "server/dashboard.h"

#include <arpa/inet.h>
#include <fcntl.h>
#include <microhttpd.h>
#include <netdb.h>
#include <netinet/in.h>
#include <sys/socket.h>
#include <sys/stat.h>
#include <unistd.h>
#include <zlib.h>

#include <cerrno>
#include <chrono>
#include <condition_variable>
#include <cstdarg>
#include <cstdio>
#include <cstdlib>
#include <cstring>
#include <mutex>
#include <thread>
#include <unordered_map>

#include "core/error.h"
#include "metrics/registry.h"
#include "util/options.h"
#include "util/text.h"

namespace cm {
namespace {

constexpr const char* kTextType = "text/plain; version=0.0.4; charset=utf-8";
constexpr const char* kOpenMetricsType = "application/openmetrics-text; version=1.0.0; charset=utf-8";
const double kHttpBounds[] = {0.0001, 0.0005, 0.001, 0.005, 0.01, 0.05, 0.1, 0.5, 1, 5};

// ---- listen addresses -----------------------------------------------------

struct ListenAddr {
  sockaddr_storage ss{};
  socklen_t len = 0;
  bool v6 = false;
};

ListenAddr parse_listen(const char* listen) {
  CM_REQUIRE(listen != nullptr, "listen is NULL");
  std::string l(listen);
  std::string host, port;
  if (!l.empty() && l[0] == '[') {
    size_t close = l.find(']');
    CM_REQUIRE(close != std::string::npos && close + 1 < l.size() && l[close + 1] == ':',
               "listen \"" + l + "\": expected [v6-address]:port");
    host = l.substr(1, close - 1);
    port = l.substr(close + 2);
  } else {
    size_t colon = l.rfind(':');
    CM_REQUIRE(colon != std::string::npos, "listen \"" + l + "\": expected host:port, [v6]:port or :port");
    host = l.substr(0, colon);
    port = l.substr(colon + 1);
    CM_REQUIRE(host.find(':') == std::string::npos, "listen \"" + l + "\": write IPv6 addresses as [addr]:port");
  }
  if (host.empty()) host = "127.0.0.1";
  char* end = nullptr;
  long p = std::strtol(port.c_str(), &end, 10);
  CM_REQUIRE(!port.empty() && *end == '\0' && p >= 0 && p <= 65535,
             "listen \"" + l + "\": port must be 0..65535, got \"" + port + "\"");
  addrinfo hints{};
  hints.ai_socktype = SOCK_STREAM;
  hints.ai_flags = AI_NUMERICSERV | AI_PASSIVE;
  addrinfo* res = nullptr;
  int rc = getaddrinfo(host.c_str(), port.c_str(), &hints, &res);
  CM_REQUIRE(rc == 0 && res, "listen \"" + l + "\": cannot resolve host \"" + host + "\": " + gai_strerror(rc));
  ListenAddr a;
  std::memcpy(&a.ss, res->ai_addr, res->ai_addrlen);
  a.len = static_cast<socklen_t>(res->ai_addrlen);
  a.v6 = res->ai_family == AF_INET6;
  freeaddrinfo(res);
  return a;
}

constexpr off_t kMaxPemBytes = 1 << 20;

// A TLS certificate or key file: a regular file of at most kMaxPemBytes,
// read without blocking (a FIFO, a device, a directory or anything that is
// not a regular file is refused before a byte is read; /dev/zero would read
// forever, a FIFO without a writer would block forever).
std::string read_pem_file(const std::string& path, const char* option) {
  auto refuse = [&](const std::string& why) {
    return Error(CM_EINVAL, std::string("option \"") + option + "\": \"" + path + "\": " + why);
  };
  int fd = ::open(path.c_str(), O_RDONLY | O_NONBLOCK | O_CLOEXEC | O_NOCTTY);
  if (fd < 0) throw refuse(std::string("cannot open: ") + std::strerror(errno));
  struct Closer {
    int fd;
    ~Closer() { ::close(fd); }
  } closer{fd};
  struct stat st {};
  if (::fstat(fd, &st) != 0) throw refuse(std::string("cannot stat: ") + std::strerror(errno));
  if (!S_ISREG(st.st_mode)) throw refuse("not a regular file");
  if (st.st_size > kMaxPemBytes)
    throw refuse("larger than " + std::to_string(kMaxPemBytes) + " bytes (" + std::to_string(st.st_size) + ")");
  std::string out(static_cast<size_t>(kMaxPemBytes) + 1, '\0');
  size_t got = 0;
  while (got < out.size()) {  // the size may change under us: the cap holds anyway
    ssize_t n = ::read(fd, out.data() + got, out.size() - got);
    if (n < 0 && errno == EINTR) continue;
    if (n < 0) throw refuse(std::string("cannot read: ") + std::strerror(errno));
    if (n == 0) break;
    got += static_cast<size_t>(n);
  }
  if (got > static_cast<size_t>(kMaxPemBytes))
    throw refuse("larger than " + std::to_string(kMaxPemBytes) + " bytes");
  // Empty would have meant "no TLS" below: plain HTTP where HTTPS was asked.
  if (got == 0) throw refuse("empty");
  out.resize(got);
  return out;
}

// ---- negotiation ------------------------------------------------------------

std::string lower(std::string_view s) {
  std::string out(s);
  for (char& c : out) c = static_cast<char>(std::tolower(static_cast<unsigned char>(c)));
  return out;
}

std::string_view trim(std::string_view s) {
  while (!s.empty() && (s.front() == ' ' || s.front() == '\t')) s.remove_prefix(1);
  while (!s.empty() && (s.back() == ' ' || s.back() == '\t')) s.remove_suffix(1);
  return s;
}

// One element of an Accept / Accept-Encoding list: its value (lower-case,
// parameters stripped), its q (default 1; malformed q: 0) and whether a
// version parameter other than `want_version` rules it out.
struct Range {
  std::string value;
  double q = 1;
  std::string version;
};

std::vector<Range> parse_list(const char* header) {
  std::vector<Range> out;
  if (!header) return out;
  for (std::string_view item : split(header, ',')) {
    std::vector<std::string_view> parts = split(item, ';');
    Range r;
    r.value = lower(trim(parts[0]));
    if (r.value.empty()) continue;
    for (size_t i = 1; i < parts.size(); ++i) {
      std::string_view p = trim(parts[i]);
      size_t eq = p.find('=');
      if (eq == std::string_view::npos) continue;
      std::string k = lower(trim(p.substr(0, eq)));
      std::string v(trim(p.substr(eq + 1)));
      if (k == "q") {
        char* end = nullptr;
        double q = std::strtod(v.c_str(), &end);
        r.q = (*end == '\0' && q >= 0 && q <= 1) ? q : 0;
      } else if (k == "version") {
        r.version = v;
      }
    }
    out.push_back(std::move(r));
  }
  return out;
}

// OpenMetrics when the client prefers it to the text format (ties: text).
bool wants_openmetrics(const char* accept) {
  double q_om = 0, q_text = 0;
  for (const Range& r : parse_list(accept)) {
    if (r.value == "application/openmetrics-text") {
      if (r.version.empty() || r.version == "1.0.0") q_om = std::max(q_om, r.q);
    } else if (r.value == "text/plain" || r.value == "text/*" || r.value == "*/*") {
      if (r.value != "text/plain" || r.version.empty() || r.version == "0.0.4") q_text = std::max(q_text, r.q);
    }
  }
  return q_om > 0 && q_om > q_text;
}

bool accepts_gzip(const char* accept_encoding) {
  double q_gzip = -1, q_star = -1;
  for (const Range& r : parse_list(accept_encoding)) {
    if (r.value == "gzip" || r.value == "x-gzip") q_gzip = std::max(q_gzip, r.q);
    if (r.value == "*") q_star = std::max(q_star, r.q);
  }
  if (q_gzip >= 0) return q_gzip > 0;
  return q_star > 0;
}

// ---- auth -------------------------------------------------------------------

// Equal strings, in time independent of where they differ (and of the
// secret's length beyond the attempt's: both are walked to the longer end).
bool same_secret(std::string_view a, std::string_view b) {
  size_t n = std::max(a.size(), b.size());
  unsigned char diff = a.size() == b.size() ? 0 : 1;
  for (size_t i = 0; i < n; ++i) {
    unsigned char x = i < a.size() ? static_cast<unsigned char>(a[i]) : 0;
    unsigned char y = i < b.size() ? static_cast<unsigned char>(b[i]) : 0;
    diff |= static_cast<unsigned char>(x ^ y);
  }
  return diff == 0;
}

bool base64_decode(std::string_view in, std::string* out) {
  auto val = [](char c) -> int {
    if (c >= 'A' && c <= 'Z') return c - 'A';
    if (c >= 'a' && c <= 'z') return c - 'a' + 26;
    if (c >= '0' && c <= '9') return c - '0' + 52;
    if (c == '+') return 62;
    if (c == '/') return 63;
    return -1;
  };
  out->clear();
  uint32_t acc = 0;
  int bits = 0;
  size_t i = 0;
  for (; i < in.size() && in[i] != '='; ++i) {
    int v = val(in[i]);
    if (v < 0) return false;
    acc = (acc << 6) | static_cast<uint32_t>(v);
    bits += 6;
    if (bits >= 8) {
      bits -= 8;
      out->push_back(static_cast<char>((acc >> bits) & 0xff));
    }
  }
  for (; i < in.size(); ++i)
    if (in[i] != '=') return false;
  return true;
}

// ---- gzip -------------------------------------------------------------------

// Compresses [data, data+len) into a malloc'd gzip stream; nullptr on failure.
char* gzip(const char* data, size_t len, size_t* out_len) {
  z_stream z{};
  // Level 1: on a 3.2 MB page of 100k series it takes 10 ms instead of 25 ms
  // (level 6) for 2% more bytes; a scrape's latency matters more.
  if (deflateInit2(&z, Z_BEST_SPEED, Z_DEFLATED, 15 + 16, 8, Z_DEFAULT_STRATEGY) != Z_OK) return nullptr;
  uLong bound = deflateBound(&z, static_cast<uLong>(len)) + 32;
  char* out = static_cast<char*>(std::malloc(bound));
  if (!out) {
    deflateEnd(&z);
    return nullptr;
  }
  z.next_in = reinterpret_cast<Bytef*>(const_cast<char*>(data));
  z.avail_in = static_cast<uInt>(len);
  z.next_out = reinterpret_cast<Bytef*>(out);
  z.avail_out = static_cast<uInt>(bound);
  int rc = deflate(&z, Z_FINISH);
  *out_len = z.total_out;
  deflateEnd(&z);
  if (rc != Z_STREAM_END) {
    std::free(out);
    return nullptr;
  }
  return out;
}

const char* path_label(std::string_view url) {
  if (url == "/metrics") return "/metrics";
  if (url == "/metrics.json") return "/metrics.json";
  if (url == "/health") return "/health";
  if (url == "/") return "/";
  if (url == "/dashboard.js") return "/dashboard.js";
  if (url == "/dashboard.css") return "/dashboard.css";
  return "other";
}

// The last message libmicrohttpd logged on this thread (start-up errors).
thread_local std::string t_mhd_log;
void mhd_logger(void*, const char* fmt, va_list ap) {
  char buf[512];
  std::vsnprintf(buf, sizeof buf, fmt, ap);
  t_mhd_log = buf;
  while (!t_mhd_log.empty() && (t_mhd_log.back() == '\n' || t_mhd_log.back() == ' ')) t_mhd_log.pop_back();
}

}  // namespace

// ---- request deadlines and the health checker -------------------------------

// How long a /health or /metrics request waits (suspended, off the polling
// thread) for the health refresh or collection it started before it is
// answered from what is known.
constexpr auto kParkedWait = std::chrono::milliseconds(1000);
// A collection running for longer than this is presumed stuck on a backend:
// scrapes render at once with the gauges' last values instead of waiting.
constexpr auto kCollectStuck = std::chrono::milliseconds(100);
// Scrapes within this long of a completed collection use its values: under
// a scrape storm the blocking collectors run about once a second.
constexpr auto kCollectFresh = std::chrono::milliseconds(1000);

// State beside the MHD daemon, shared by its callbacks and two threads:
//  - the housekeeper closes connections whose request did not arrive within
//    request_timeout_ms (MHD's own timeout is an idle timeout that every byte
//    resets, so a client trickling a header line every few seconds would
//    hold its slot forever), and resumes /health requests whose wait ran out;
//  - the checker (started on the first /health) runs the registry's health
//    checks, holding no lock across them, at most every health_interval_ms;
//  - the collector (started on the first scrape) runs the registry's
//    collectors (the gauges that mirror a cache's size: a redis DBSIZE) for
//    the scrapes, which render without running them.
// One mutex guards it all; no backend I/O and no MHD call that can call back
// into us happens under it (MHD_suspend/resume_connection only flag the
// connection and wake MHD's thread).
class ServerAux {
 public:
  using Clock = std::chrono::steady_clock;
  struct HealthEntry {
    std::string cache, backend;
    int rc = CM_OK;
    std::string err;
  };
  struct HealthView {
    bool have = false;        // a refresh has completed
    bool refreshing = false;  // one is in flight now
    int64_t age_ms = 0;       // since the last refresh completed
    std::vector<HealthEntry> entries;
  };

  ServerAux(cm_registry& reg, std::chrono::milliseconds request_timeout, std::chrono::milliseconds health_interval)
      : reg_(reg), request_timeout_(request_timeout), health_interval_(health_interval) {
    house_ = std::thread([this] { housekeep(); });
  }
  ServerAux(const ServerAux&) = delete;
  ServerAux& operator=(const ServerAux&) = delete;
  ~ServerAux() {
    begin_stop();
    if (house_.joinable()) house_.join();
    if (checker_.joinable()) checker_.join();
    if (collector_.joinable()) collector_.join();
  }

  // Before MHD_stop_daemon: no /health request waits any more (MHD refuses
  // to stop with a suspended connection) and none will start waiting.
  void begin_stop() {
    std::lock_guard<std::mutex> lk(mu_);
    stopping_ = true;
    for (auto& w : waiters_) MHD_resume_connection(w.conn);
    waiters_.clear();
    house_cv_.notify_all();
    check_cv_.notify_all();
    collect_cv_.notify_all();
  }

  // MHD_OPTION_NOTIFY_CONNECTION.
  void conn_started(MHD_Connection* c) {
    const MHD_ConnectionInfo* info = MHD_get_connection_info(c, MHD_CONNECTION_INFO_CONNECTION_FD);
    if (!info) return;
    std::lock_guard<std::mutex> lk(mu_);
    arm(conns_[c] = Conn{info->connect_fd, {}, false});
  }
  void conn_closed(MHD_Connection* c) {
    // MHD closes the socket after this returns: holding mu_ here is what
    // keeps the housekeeper from shutting down a reused descriptor.
    std::lock_guard<std::mutex> lk(mu_);
    conns_.erase(c);
  }
  // The request was answered (or parked): its deadline no longer runs.
  void request_answered(MHD_Connection* c) {
    std::lock_guard<std::mutex> lk(mu_);
    auto it = conns_.find(c);
    if (it != conns_.end()) it->second.armed = false;
  }
  // MHD_OPTION_NOTIFY_COMPLETED: the next request on a kept-alive connection
  // must arrive within request_timeout_ms too.
  void request_completed(MHD_Connection* c) {
    std::lock_guard<std::mutex> lk(mu_);
    auto it = conns_.find(c);
    if (it != conns_.end()) arm(it->second);
  }

  // For the /health handler, on MHD's thread. Fresh results (younger than
  // health_interval_ms, taken with the current set of checks): true, *out
  // filled. Otherwise (and when `may_wait`: not a resumed request) a refresh
  // is requested unless one is in flight, and the request is suspended (false
  // returned) until the refresh completes or kParkedWait passes; the handler
  // then runs again with may_wait false and answers from what is known.
  bool health(MHD_Connection* c, bool may_wait, HealthView* out) {
    uint64_t gen;
    {
      std::lock_guard<std::mutex> g(reg_.health_mu);
      gen = reg_.health_gen;
    }
    std::lock_guard<std::mutex> lk(mu_);
    auto now = Clock::now();
    bool fresh = have_ && result_gen_ == gen && now - completed_ < health_interval_;
    if (!fresh && !stopping_ && may_wait) {  // (a resumed request had its refresh)
      if (!refreshing_) {
        requested_ = true;
        if (!checker_.joinable()) checker_ = std::thread([this] { check_loop(); });
        check_cv_.notify_one();
      }
      park(c, Job::Health, now);
      return false;
    }
    out->have = have_;
    out->refreshing = refreshing_ || requested_;
    out->age_ms = have_ ? std::chrono::duration_cast<std::chrono::milliseconds>(now - completed_).count() : 0;
    out->entries = results_;
    return true;
  }

  // For /metrics and /metrics.json, on MHD's thread. Runs the collectors
  // that do no I/O (a memory cache's size) here; the others (a redis key
  // count) run on the collector thread. True when the request renders now:
  // no such collectors, a collection completed within kCollectFresh, one
  // stuck for more than kCollectStuck, or a resumed request. False after
  // suspending it until a collection (started now, or just before)
  // completes or kParkedWait passes.
  bool collected(MHD_Connection* c, bool may_wait) {
    run_collectors(reg_, Collectors::NonBlocking);
    if (!has_blocking_collectors(reg_)) return true;
    std::lock_guard<std::mutex> lk(mu_);
    if (stopping_ || !may_wait) return true;
    auto now = Clock::now();
    if (collect_requested_ || collect_running_) {
      if (now - collect_started_ > kCollectStuck) return true;
    } else {
      if (collected_once_ && now - collect_done_ < kCollectFresh) return true;
      collect_requested_ = true;
      collect_started_ = now;
      if (!collector_.joinable()) collector_ = std::thread([this] { collect_loop(); });
      collect_cv_.notify_one();
    }
    park(c, Job::Collect, now);
    return false;
  }

 private:
  struct Conn {
    int fd = -1;
    Clock::time_point deadline;
    bool armed = false;
  };
  enum class Job { Health, Collect };
  struct Waiter {
    MHD_Connection* conn;
    Job job;
    Clock::time_point deadline;
  };

  void park(MHD_Connection* c, Job job, Clock::time_point now) {  // mu_ held
    auto it = conns_.find(c);
    if (it != conns_.end()) it->second.armed = false;
    MHD_suspend_connection(c);
    waiters_.push_back(Waiter{c, job, now + kParkedWait});
    house_cv_.notify_one();
  }

  void resume(Job job) {  // mu_ held
    for (size_t i = 0; i < waiters_.size();) {
      if (waiters_[i].job == job) {
        MHD_resume_connection(waiters_[i].conn);
        waiters_[i] = waiters_.back();
        waiters_.pop_back();
      } else {
        ++i;
      }
    }
  }

  void collect_loop() {
    std::unique_lock<std::mutex> lk(mu_);
    for (;;) {
      collect_cv_.wait(lk, [&] { return stopping_ || collect_requested_; });
      if (stopping_) return;
      collect_requested_ = false;
      collect_running_ = true;
      lk.unlock();
      run_collectors(reg_, Collectors::Blocking);
      lk.lock();
      collect_running_ = false;
      collected_once_ = true;
      collect_done_ = Clock::now();
      resume(Job::Collect);
    }
  }

  void arm(Conn& c) {  // mu_ held
    c.deadline = Clock::now() + request_timeout_;
    c.armed = true;
    if (c.deadline < next_wake_) house_cv_.notify_one();
  }

  void housekeep() {
    std::unique_lock<std::mutex> lk(mu_);
    while (!stopping_) {
      auto now = Clock::now();
      auto next = now + std::chrono::hours(1);
      for (auto& [conn, st] : conns_) {
        if (!st.armed) continue;
        if (st.deadline <= now) {
          // Wakes MHD's thread on the connection, which then sees the end
          // of the stream and closes it as it would any other.
          ::shutdown(st.fd, SHUT_RDWR);
          st.armed = false;
        } else {
          next = std::min(next, st.deadline);
        }
      }
      for (size_t i = 0; i < waiters_.size();) {
        if (waiters_[i].deadline <= now) {
          MHD_resume_connection(waiters_[i].conn);
          waiters_[i] = waiters_.back();
          waiters_.pop_back();
        } else {
          next = std::min(next, waiters_[i].deadline);
          ++i;
        }
      }
      next_wake_ = next;
      house_cv_.wait_until(lk, next);
      next_wake_ = Clock::time_point::min();  // awake: arm() need not notify
    }
  }

  void check_loop() {
    std::unique_lock<std::mutex> lk(mu_);
    for (;;) {
      check_cv_.wait(lk, [&] { return stopping_ || requested_; });
      if (stopping_) return;
      requested_ = false;
      refreshing_ = true;
      lk.unlock();
      // Copy the checks under the registry's lock, run them without it.
      std::vector<std::shared_ptr<cm_registry::HealthCheck>> checks;
      uint64_t gen;
      {
        std::lock_guard<std::mutex> g(reg_.health_mu);
        gen = reg_.health_gen;
        checks.reserve(reg_.health.size());
        for (auto& [owner, h] : reg_.health) checks.push_back(h);
      }
      std::vector<HealthEntry> results;
      for (auto& h : checks) {
        HealthEntry e{h->cache, h->backend, CM_OK, {}};
        if (run_health_check(*h, &e.rc, &e.err)) results.push_back(std::move(e));
      }
      checks.clear();  // before the lock: the last reference may go here
      lk.lock();
      results_ = std::move(results);
      result_gen_ = gen;
      completed_ = Clock::now();
      have_ = true;
      refreshing_ = false;
      resume(Job::Health);
    }
  }

  cm_registry& reg_;
  const std::chrono::milliseconds request_timeout_, health_interval_;
  std::mutex mu_;
  std::condition_variable house_cv_, check_cv_, collect_cv_;
  bool stopping_ = false;
  Clock::time_point next_wake_ = Clock::time_point::min();
  std::unordered_map<MHD_Connection*, Conn> conns_;
  std::vector<Waiter> waiters_;  // suspended requests
  bool have_ = false, refreshing_ = false, requested_ = false;
  uint64_t result_gen_ = 0;
  Clock::time_point completed_;
  std::vector<HealthEntry> results_;
  bool collect_requested_ = false, collect_running_ = false, collected_once_ = false;
  Clock::time_point collect_started_, collect_done_;
  std::thread house_, checker_, collector_;
};

}  // namespace cm

cm_server::~cm_server() {
  if (fork_generation != cm::fork::generation()) {
    // The parent's server, inherited through fork(): its threads (MHD's and
    // ours) do not exist here, so nothing can be stopped or joined. Left as
    // it is; the listening socket stays the parent's.
    static_cast<void>(aux.release());
    return;
  }
  if (aux) aux->begin_stop();
  if (daemon) MHD_stop_daemon(daemon);
  aux.reset();  // after the daemon: its close notifications still arrive
}

namespace cm {
namespace {

struct Reply {
  unsigned code = 200;
  char* body = nullptr;  // malloc'd
  size_t len = 0;
  const char* type = "text/plain; charset=utf-8";
  std::vector<std::pair<std::string, std::string>> headers;
  bool suspended = false;  // parked (MHD_suspend_connection): no response yet
};

void set_body(Reply& r, std::string_view text) {
  r.body = static_cast<char*>(std::malloc(text.size() + 1));
  if (!r.body) throw std::bad_alloc();
  std::memcpy(r.body, text.data(), text.size());
  r.len = text.size();
}

void set_body(Reply& r, OutBuf& out) {
  r.len = out.size();
  r.body = out.release();
}

bool authorized(const cm_server& s, MHD_Connection* conn) {
  if (s.token.empty() && s.user.empty()) return true;
  const char* auth = MHD_lookup_connection_value(conn, MHD_HEADER_KIND, MHD_HTTP_HEADER_AUTHORIZATION);
  if (!auth) return false;
  std::string_view a(auth);
  bool ok = false;
  if (!s.token.empty() && a.size() > 7 && lower(a.substr(0, 7)) == "bearer ")
    ok = same_secret(trim(a.substr(7)), s.token) || ok;
  if (!s.user.empty() && a.size() > 6 && lower(a.substr(0, 6)) == "basic ") {
    std::string decoded;
    if (base64_decode(trim(a.substr(6)), &decoded)) ok = same_secret(decoded, s.user + ":" + s.password) || ok;
  }
  return ok;
}

MHD_Result collect_names(void* cls, MHD_ValueKind, const char* key, const char* value) {
  if (key && value && std::strcmp(key, "name[]") == 0) static_cast<NameFilter*>(cls)->emplace_back(value);
  return MHD_YES;
}

// /health's body: 200 "ok" when every check passed, 503 "unhealthy" when
// one failed, 503 "pending" before the first refresh has completed.
std::string health_json(cm_server& s, const ServerAux::HealthView& v, unsigned* code) {
  bool healthy = v.have;
  for (auto& e : v.entries)
    if (e.rc != CM_OK) healthy = false;
  *code = healthy ? 200 : 503;
  OutBuf out;
  double up = std::chrono::duration<double>(std::chrono::steady_clock::now() - s.started).count();
  out.append("{\"status\":");
  out.append(!v.have ? "\"pending\"" : healthy ? "\"ok\"" : "\"unhealthy\"");
  out.append(",\"uptime_seconds\":");
  out.append_double(up);
  out.append(",\"version\":");
  append_json_string(out, CM_VERSION_STRING);
  if (v.have) {
    out.append(",\"age_ms\":");
    out.append(std::to_string(v.age_ms));
  }
  out.append(",\"refreshing\":");
  out.append(v.refreshing ? "true" : "false");
  out.append(",\"caches\":[");
  bool first = true;
  for (auto& e : v.entries) {
    if (!first) out.push(',');
    first = false;
    out.append("{\"cache\":");
    append_json_string(out, e.cache);
    out.append(",\"backend\":");
    append_json_string(out, e.backend);
    out.append(",\"healthy\":");
    out.append(e.rc == CM_OK ? "true" : "false");
    if (e.rc != CM_OK) {
      out.append(",\"status\":");
      append_json_string(out, cm_status_name(e.rc));
      out.append(",\"error\":");
      append_json_string(out, e.err);
    }
    out.push('}');
  }
  out.append("]}\n");
  return std::string(out.view());
}

const char* kIndex =
    "<!DOCTYPE html>\n<html><head><meta charset=\"utf-8\"><title>cachemeter</title></head>\n"
    "<body><h1>cachemeter</h1><ul>\n"
    "<li><a href=\"metrics\">/metrics</a> Prometheus text (OpenMetrics on request)</li>\n"
    "<li><a href=\"metrics.json\">/metrics.json</a> JSON, with hit ratios and percentiles</li>\n"
    "<li><a href=\"health\">/health</a> backend health</li>\n"
    "</ul></body></html>\n";

// resumed: the request was parked by /health and is answered now.
Reply route(cm_server& s, MHD_Connection* conn, std::string_view url, std::string_view method, bool resumed) {
  Reply r;
  if (method != "GET" && method != "HEAD") {
    r.code = 405;
    r.headers.emplace_back("Allow", "GET, HEAD");
    set_body(r, "method not allowed: use GET or HEAD\n");
    return r;
  }
  if (!authorized(s, conn)) {
    r.code = 401;
    if (!s.token.empty()) r.headers.emplace_back("WWW-Authenticate", "Bearer realm=\"cachemeter\"");
    if (!s.user.empty()) r.headers.emplace_back("WWW-Authenticate", "Basic realm=\"cachemeter\", charset=\"UTF-8\"");
    set_body(r, "unauthorized\n");
    return r;
  }
  if ((url == "/metrics" || url == "/metrics.json") && !s.aux->collected(conn, !resumed)) {
    r.suspended = true;
    return r;
  }
  if (url == "/metrics") {
    NameFilter names;
    MHD_get_connection_values(conn, MHD_GET_ARGUMENT_KIND, collect_names, &names);
    bool om = wants_openmetrics(MHD_lookup_connection_value(conn, MHD_HEADER_KIND, MHD_HTTP_HEADER_ACCEPT));
    OutBuf out;
    render_text(*s.reg, out, om, &names, false);
    set_body(r, out);
    r.type = om ? kOpenMetricsType : kTextType;
    r.headers.emplace_back("Vary", "Accept, Accept-Encoding");
    if (accepts_gzip(MHD_lookup_connection_value(conn, MHD_HEADER_KIND, MHD_HTTP_HEADER_ACCEPT_ENCODING))) {
      size_t zlen = 0;
      if (char* z = gzip(r.body, r.len, &zlen)) {
        std::free(r.body);
        r.body = z;
        r.len = zlen;
        r.headers.emplace_back("Content-Encoding", "gzip");
      }
    }
    return r;
  }
  if (url == "/metrics.json") {
    NameFilter names;
    MHD_get_connection_values(conn, MHD_GET_ARGUMENT_KIND, collect_names, &names);
    OutBuf out;
    render_json(*s.reg, out, &names, false);
    set_body(r, out);
    r.type = "application/json";
    return r;
  }
  if (url == "/health") {
    ServerAux::HealthView v;
    if (!s.aux->health(conn, !resumed, &v)) {
      r.suspended = true;
      return r;
    }
    set_body(r, health_json(s, v, &r.code));
    r.type = "application/json";
    r.headers.emplace_back("Cache-Control", "no-store");
    if (!v.have) r.headers.emplace_back("Retry-After", "1");
    return r;
  }
  if (url == "/" || (s.dashboard && (url == "/dashboard.js" || url == "/dashboard.css"))) {
    // The dashboard (dashboard=on): self-contained, same-origin only.
    const char* body = !s.dashboard ? kIndex : url == "/" ? kDashboardHtml : url == "/dashboard.js" ? kDashboardJs
                                                                                                   : kDashboardCss;
    set_body(r, body);
    r.type = url == "/dashboard.js"    ? "text/javascript; charset=utf-8"
             : url == "/dashboard.css" ? "text/css; charset=utf-8"
                                       : "text/html; charset=utf-8";
    r.headers.emplace_back("Content-Security-Policy", kDashboardCsp);
    r.headers.emplace_back("X-Content-Type-Options", "nosniff");
    r.headers.emplace_back("Cache-Control", "no-store");
    return r;
  }
  r.code = 404;
  set_body(r, "not found: try /metrics, /metrics.json, /health\n");
  return r;
}

void record(cm_server& s, const char* path, unsigned code, double seconds) {
  try {
    char code_text[8];
    std::snprintf(code_text, sizeof code_text, "%u", code);
    const char* req_values[] = {path, code_text};
    cm_counter_add(family_series(*s.requests, req_values, 2), 1);
    const char* dur_values[] = {path};
    cm_histogram_observe(family_series(*s.durations, dur_values, 1), seconds);
  } catch (...) {
    // Self-metrics never fail a request.
  }
}

MHD_Result handle(void* cls, MHD_Connection* conn, const char* url, const char* method, const char*,
                  const char*, size_t* upload_size, void** con_cls) {
  static int first_call_marker, parked_marker;
  if (*con_cls == nullptr) {  // headers received; the body (if any) follows
    *con_cls = &first_call_marker;
    return MHD_YES;
  }
  if (*upload_size != 0) {  // a request body: we take none, so drop it
    *upload_size = 0;
    return MHD_YES;
  }
  cm_server& s = *static_cast<cm_server*>(cls);
  const bool resumed = *con_cls == &parked_marker;
  s.aux->request_answered(conn);
  auto t0 = std::chrono::steady_clock::now();
  std::string_view u = url ? url : "";
  Reply r;
  try {
    r = route(s, conn, u, method ? method : "", resumed);
  } catch (...) {
    std::free(r.body);
    r = Reply{};
    r.code = 500;
    const char* msg = "internal error\n";
    r.body = static_cast<char*>(std::malloc(std::strlen(msg)));
    if (r.body) {
      std::memcpy(r.body, msg, std::strlen(msg));
      r.len = std::strlen(msg);
    }
  }
  if (r.suspended) {
    *con_cls = &parked_marker;
    return MHD_YES;
  }
  MHD_Response* resp = MHD_create_response_from_buffer(r.len, r.body ? r.body : const_cast<char*>(""),
                                                       r.body ? MHD_RESPMEM_MUST_FREE : MHD_RESPMEM_PERSISTENT);
  if (!resp) {
    std::free(r.body);
    return MHD_NO;
  }
  MHD_add_response_header(resp, MHD_HTTP_HEADER_CONTENT_TYPE, r.type);
  for (auto& [k, v] : r.headers) MHD_add_response_header(resp, k.c_str(), v.c_str());
  MHD_Result rc = MHD_queue_response(conn, r.code, resp);
  MHD_destroy_response(resp);
  record(s, path_label(u), r.code, std::chrono::duration<double>(std::chrono::steady_clock::now() - t0).count());
  return rc;
}

void notify_connection(void* cls, MHD_Connection* conn, void**, MHD_ConnectionNotificationCode code) {
  cm_server& s = *static_cast<cm_server*>(cls);
  if (code == MHD_CONNECTION_NOTIFY_STARTED)
    s.aux->conn_started(conn);
  else
    s.aux->conn_closed(conn);
}

void notify_completed(void* cls, MHD_Connection* conn, void**, MHD_RequestTerminationCode) {
  static_cast<cm_server*>(cls)->aux->request_completed(conn);
}

}  // namespace

std::unique_ptr<cm_server> start_server(cm_registry* reg, const char* listen, const char* options) {
  if (!reg) reg = cm_registry_default();
  CM_REQUIRE(reg != nullptr, "no default registry");
  ListenAddr addr = parse_listen(listen);
  Options o = Options::parse(options, "server options");
  o.check_known({"token", "basic_auth", "tls_cert", "tls_key", "max_conns", "timeout_s", "threads", "max_conns_per_ip",
                 "request_timeout_ms", "health_interval_ms", "dashboard"});
  auto s = std::make_unique<cm_server>();
  s->reg = reg;
  s->dashboard = o.get_bool("dashboard", true);
  s->token = o.get("token", "");
  CM_REQUIRE(!o.has("token") || !s->token.empty(), "option \"token\" is empty");
  if (o.has("basic_auth")) {
    std::string ba = o.get("basic_auth", "");
    size_t colon = ba.find(':');
    CM_REQUIRE(colon != std::string::npos && colon > 0, "option \"basic_auth\" must be user:password");
    s->user = ba.substr(0, colon);
    s->password = ba.substr(colon + 1);
  }
  CM_REQUIRE(o.has("tls_cert") == o.has("tls_key"), "options \"tls_cert\" and \"tls_key\" go together");
  if (o.has("tls_cert")) {
    s->tls_cert = read_pem_file(o.get("tls_cert", ""), "tls_cert");
    s->tls_key = read_pem_file(o.get("tls_key", ""), "tls_key");
  }
  unsigned max_conns = static_cast<unsigned>(o.get_int("max_conns", 256, 1, 100000));
  unsigned timeout_s = static_cast<unsigned>(o.get_int("timeout_s", 10, 1, 3600));
  unsigned threads = static_cast<unsigned>(o.get_int("threads", 1, 1, 64));
  unsigned per_ip = static_cast<unsigned>(o.get_int("max_conns_per_ip", 32, 0, 100000));
  auto request_timeout = std::chrono::milliseconds(o.get_int("request_timeout_ms", 5000, 10, 3600000));
  auto health_interval = std::chrono::milliseconds(o.get_int("health_interval_ms", 5000, 0, 86400000));

  const std::string p = reg->prefix;
  const char* req_labels[] = {"path", "code"};
  s->requests = register_family(*reg, Kind::Counter, p + "http_requests_total",
                                "HTTP requests served by the embedded endpoint, by path and status code.", req_labels, 2,
                                nullptr, 0, true);
  const char* dur_labels[] = {"path"};
  s->durations = register_family(*reg, Kind::Histogram, p + "http_request_duration_seconds",
                                 "Time to answer an HTTP request of the embedded endpoint, by path.", dur_labels, 1,
                                 kHttpBounds, std::size(kHttpBounds), true);

  // MHD_USE_AUTO: epoll on Linux, so neither slow clients nor many
  // connections cost a thread or a select() scan each.
  // Suspend/resume: a /health request waits for the checker off MHD's thread.
  unsigned flags = MHD_USE_INTERNAL_POLLING_THREAD | MHD_USE_AUTO | MHD_USE_ERROR_LOG | MHD_ALLOW_SUSPEND_RESUME;
  if (addr.v6) flags |= MHD_USE_IPv6;
  if (!s->tls_cert.empty()) flags |= MHD_USE_TLS;
  std::vector<MHD_OptionItem> opts;
  opts.push_back({MHD_OPTION_SOCK_ADDR, 0, &addr.ss});
  opts.push_back({MHD_OPTION_CONNECTION_LIMIT, static_cast<intptr_t>(max_conns), nullptr});
  opts.push_back({MHD_OPTION_CONNECTION_TIMEOUT, static_cast<intptr_t>(timeout_s), nullptr});
  opts.push_back({MHD_OPTION_CONNECTION_MEMORY_LIMIT, static_cast<intptr_t>(64 * 1024), nullptr});
  opts.push_back({MHD_OPTION_EXTERNAL_LOGGER, reinterpret_cast<intptr_t>(&mhd_logger), nullptr});
  if (per_ip > 0) opts.push_back({MHD_OPTION_PER_IP_CONNECTION_LIMIT, static_cast<intptr_t>(per_ip), nullptr});
  opts.push_back({MHD_OPTION_NOTIFY_CONNECTION, reinterpret_cast<intptr_t>(&notify_connection), s.get()});
  opts.push_back({MHD_OPTION_NOTIFY_COMPLETED, reinterpret_cast<intptr_t>(&notify_completed), s.get()});
  if (threads > 1) opts.push_back({MHD_OPTION_THREAD_POOL_SIZE, static_cast<intptr_t>(threads), nullptr});
  if (!s->tls_cert.empty()) {
    opts.push_back({MHD_OPTION_HTTPS_MEM_CERT, 0, const_cast<char*>(s->tls_cert.c_str())});
    opts.push_back({MHD_OPTION_HTTPS_MEM_KEY, 0, const_cast<char*>(s->tls_key.c_str())});
  }
  opts.push_back({MHD_OPTION_END, 0, nullptr});

  s->aux = std::make_unique<ServerAux>(*reg, request_timeout, health_interval);
  t_mhd_log.clear();
  uint16_t port = ntohs(addr.v6 ? reinterpret_cast<sockaddr_in6*>(&addr.ss)->sin6_port
                                : reinterpret_cast<sockaddr_in*>(&addr.ss)->sin_port);
  s->daemon = MHD_start_daemon(flags, port, nullptr, nullptr, &handle, s.get(), MHD_OPTION_ARRAY, opts.data(),
                               MHD_OPTION_END);
  if (!s->daemon) {
    std::string why = t_mhd_log.empty() ? std::string(std::strerror(errno)) : t_mhd_log;
    int status = (!s->tls_cert.empty() && why.find("TLS") != std::string::npos) ? CM_EINVAL : CM_EUNAVAILABLE;
    throw Error(status, "cannot serve on \"" + std::string(listen) + "\": " + why);
  }
  const MHD_DaemonInfo* info = MHD_get_daemon_info(s->daemon, MHD_DAEMON_INFO_LISTEN_FD);
  sockaddr_storage bound{};
  socklen_t blen = sizeof bound;
  if (info && getsockname(info->listen_fd, reinterpret_cast<sockaddr*>(&bound), &blen) == 0)
    s->port = ntohs(bound.ss_family == AF_INET6 ? reinterpret_cast<sockaddr_in6*>(&bound)->sin6_port
                                                : reinterpret_cast<sockaddr_in*>(&bound)->sin_port);
  else
    s->port = port;
  s->started = std::chrono::steady_clock::now();
  return s;
}

}  // namespace cm
