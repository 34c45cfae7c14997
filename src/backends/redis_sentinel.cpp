// SPDX-License-Identifier: Apache-2.0
// Finding a master through Redis Sentinel. Interface: redis_sentinel.h.
//
// The client side of Sentinel's discovery protocol: ask each sentinel in
// turn for the master's address, start with the one that answered last, and
// let the caller verify the address it got with ROLE (a sentinel may still
// name the old master for a moment during a failover). A reply is read from
// a bounded blocking connection (connect_timeout_ms, then timeout_ms per
// command) opened for the query and closed after it.
#include "backends/redis_sentinel.h"

#include <hiredis/hiredis.h>

#include <algorithm>
#include <cstdlib>

#include "backends/hiredis_util.h"
#include "core/error.h"

namespace cm {
namespace {

using hiredis::Ctx;
using hiredis::Reply;
using hiredis::SigpipeBlock;

timeval tv_of(int ms) { return timeval{ms / 1000, (ms % 1000) * 1000}; }

// One command on c; a null reply (I/O failure) or an error reply gives "" and
// *why; otherwise the reply.
Reply command(redisContext* c, std::initializer_list<std::string_view> args, std::string* why) {
  std::vector<const char*> argv;
  std::vector<size_t> lens;
  for (auto a : args) {
    argv.push_back(a.data());
    lens.push_back(a.size());
  }
  void* r;
  {
    SigpipeBlock no_sigpipe;
    r = redisCommandArgv(c, static_cast<int>(argv.size()), argv.data(), lens.data());
    if (!r) no_sigpipe.failed();
  }
  if (!r) {
    *why = c->errstr[0] ? c->errstr : "connection lost";
    return nullptr;
  }
  Reply reply(static_cast<redisReply*>(r));
  if (reply->type == REDIS_REPLY_ERROR) {
    *why = std::string(reply->str, reply->len);
    return nullptr;
  }
  return reply;
}

// A non-empty host passing host_bytes_ok() and a decimal_port(). what:
// "master" or "replica".
bool check_address(std::string_view host, std::string_view port, const char* what, HostPort* out,
                   std::string* why) {
  if (host.empty() || !host_bytes_ok(host)) {
    *why = std::string("unexpected ") + what + " host (" + std::to_string(host.size()) +
           " bytes: empty, longer than 255 or holding a space, control byte, ',' or '/')";
    return false;
  }
  const int p = decimal_port(port);
  if (p == 0) {
    bool digits = !port.empty() && port.size() <= 5 && port.find_first_not_of("0123456789") == std::string_view::npos;
    *why = std::string("unexpected ") + what + " port for \"" + std::string(host) + "\" (" +
           (digits ? std::string(port) : std::to_string(port.size()) + " bytes") + "): not a decimal 1..65535";
    return false;
  }
  *out = HostPort{std::string(host), p};
  return true;
}

bool is_string(const redisReply* e) { return e->type == REDIS_REPLY_STRING || e->type == REDIS_REPLY_STATUS; }

}  // namespace

bool parse_master_address(const redisReply& r, HostPort* out, std::string* why) {
  if (r.type != REDIS_REPLY_ARRAY || r.elements != 2 || r.element[0]->type != REDIS_REPLY_STRING ||
      r.element[1]->type != REDIS_REPLY_STRING) {
    *why = "unexpected reply to SENTINEL GET-MASTER-ADDR-BY-NAME";
    return false;
  }
  return check_address(std::string_view(r.element[0]->str, r.element[0]->len),
                       std::string_view(r.element[1]->str, r.element[1]->len), "master", out, why);
}

bool parse_replica_list(const redisReply& r, std::vector<HostPort>* usable, std::string* why) {
  usable->clear();
  if (r.type != REDIS_REPLY_ARRAY) {
    *why = "unexpected reply to SENTINEL REPLICAS";
    return false;
  }
  for (size_t i = 0; i < r.elements; ++i) {
    const redisReply& e = *r.element[i];
    if (e.type != REDIS_REPLY_ARRAY || e.elements % 2 != 0) {
      *why = "unexpected entry in the reply to SENTINEL REPLICAS";
      usable->clear();
      return false;
    }
    std::string_view ip, port, flags, link;
    bool has_ip = false, has_port = false, has_flags = false;
    for (size_t j = 0; j + 1 < e.elements; j += 2) {
      if (!is_string(e.element[j]) || !is_string(e.element[j + 1])) {
        *why = "unexpected field in the reply to SENTINEL REPLICAS";
        usable->clear();
        return false;
      }
      std::string_view k(e.element[j]->str, e.element[j]->len), v(e.element[j + 1]->str, e.element[j + 1]->len);
      if (k == "ip") {
        ip = v;
        has_ip = true;
      } else if (k == "port") {
        port = v;
        has_port = true;
      } else if (k == "flags") {
        flags = v;
        has_flags = true;
      } else if (k == "master-link-status") {
        link = v;
      }
    }
    if (!has_ip || !has_port || !has_flags) {
      *why = "an entry of the reply to SENTINEL REPLICAS lacks ip, port or flags";
      usable->clear();
      return false;
    }
    HostPort hp;
    if (!check_address(ip, port, "replica", &hp, why)) {
      usable->clear();
      return false;
    }
    // Usable: a replica ("slave") that the sentinel sees up and linked to
    // its master; none of s_down, o_down, disconnected, or any other flag.
    if (flags != "slave" || link != "ok") continue;
    if (std::find(usable->begin(), usable->end(), hp) == usable->end()) usable->push_back(std::move(hp));
  }
  return true;
}

int decimal_port(std::string_view s) {
  if (s.empty() || s.size() > 5) return 0;
  int port = 0;
  for (char ch : s) {
    if (ch < '0' || ch > '9') return 0;
    port = port * 10 + (ch - '0');
  }
  return port <= 65535 ? port : 0;
}

bool host_bytes_ok(std::string_view host) {
  if (host.size() > kMaxHostBytes) return false;
  for (char ch : host)
    if (static_cast<unsigned char>(ch) <= ' ' || ch == '\x7f' || ch == ',' || ch == '/') return false;
  return true;
}

std::string HostPort::text() const {
  if (host.find(':') != std::string::npos) return "[" + host + "]:" + std::to_string(port);
  return host + ":" + std::to_string(port);
}

SentinelResolver::SentinelResolver(SentinelOptions opt) : opt_(std::move(opt)) { fork_.enrol(this); }

HostPort SentinelResolver::last() const {
  std::lock_guard lock(mu_);
  return last_;
}

std::string SentinelResolver::where() const {
  std::string s = "master \"" + opt_.master_name + "\" via sentinels ";
  for (size_t i = 0; i < opt_.sentinels.size(); ++i) s += (i ? "," : "") + opt_.sentinels[i].text();
  return s;
}

bool SentinelResolver::ask(std::initializer_list<std::string_view> args,
                           const std::function<bool(const redisReply&, std::string*)>& take,
                           std::string* failures) {
  const size_t n = opt_.sentinels.size();
  size_t first;
  {
    std::lock_guard lock(mu_);
    first = first_;
  }
  for (size_t i = 0; i < n; ++i) {
    const size_t at = (first + i) % n;
    const HostPort& s = opt_.sentinels[at];
    auto failed = [&](const std::string& why) { *failures += "; " + s.text() + ": " + why; };
    Ctx c(redisConnectWithTimeout(s.host.c_str(), s.port, tv_of(opt_.connect_timeout_ms)));
    if (!c) throw std::bad_alloc();
    if (c->err) {
      failed(std::string("cannot connect: ") + c->errstr);
      continue;
    }
    if (redisSetTimeout(c.get(), tv_of(opt_.timeout_ms)) != REDIS_OK) {
      failed("cannot set the timeout");
      continue;
    }
    std::string why;
    if (!opt_.password.empty()) {
      Reply auth = opt_.user.empty() ? command(c.get(), {"AUTH", opt_.password}, &why)
                                     : command(c.get(), {"AUTH", opt_.user, opt_.password}, &why);
      if (!auth) {
        failed("AUTH (sentinel_password): " + why);
        continue;
      }
    }
    Reply r = command(c.get(), args, &why);
    if (!r) {
      // NOAUTH from a sentinel that needs a password we were not given.
      failed(why.rfind("NOAUTH", 0) == 0 ? "authentication required (sentinel_password=): " + why : why);
      continue;
    }
    if (!take(*r, &why)) {
      failed(why);
      continue;
    }
    std::lock_guard lock(mu_);
    first_ = at;
    return true;
  }
  return false;
}

HostPort SentinelResolver::master() {
  std::string failures;
  size_t answered = 0, unknown = 0;
  HostPort got;
  bool ok = ask({"SENTINEL", "GET-MASTER-ADDR-BY-NAME", opt_.master_name},
                [&](const redisReply& r, std::string* why) {
                  ++answered;
                  if (r.type == REDIS_REPLY_NIL) {
                    ++unknown;
                    *why = "knows no master named \"" + opt_.master_name + "\"";
                    return false;
                  }
                  return parse_master_address(r, &got, why);
                },
                &failures);
  if (ok) {
    unknown_ = false;
    std::lock_guard lock(mu_);
    if (!last_.host.empty() && !(last_ == got)) ++switches_;
    last_ = got;
    return got;
  }
  unknown_ = answered > 0 && unknown == answered;
  throw Error(CM_EUNAVAILABLE,
              "redis sentinel: " + where() + ": no sentinel named the master (" + failures.substr(2) + ")",
              ErrorKind::Connection);
}

std::vector<HostPort> SentinelResolver::replicas() {
  std::string failures;
  std::vector<HostPort> got;
  if (ask({"SENTINEL", "REPLICAS", opt_.master_name},
          [&](const redisReply& r, std::string* why) { return parse_replica_list(r, &got, why); }, &failures))
    return got;
  throw Error(CM_EUNAVAILABLE,
              "redis sentinel: " + where() + ": no sentinel listed the replicas (" + failures.substr(2) + ")",
              ErrorKind::Connection);
}

}  // namespace cm
