// SPDX-License-Identifier: Apache-2.0
// The Pushgateway exporter: pushgateway://host:port/metrics/job/<job>[/<label>/<value>...]
// (and pushgateway+https://) pushes the registry's text exposition with
// libcurl whenever something changed; delete_on_stop removes the group at
// the end. Options and decisions: docs/exporters.md.
#include <curl/curl.h>
#include <unistd.h>

#include <cstring>
#include <mutex>
#include <string>
#include <vector>

#include "core/error.h"
#include "export/exporter.h"
#include "metrics/names.h"
#include "metrics/registry.h"
#include "util/options.h"
#include "util/text.h"

namespace cm {

namespace {

constexpr std::string_view kSchemes[] = {"pushgateway", "pushgateway+https"};
constexpr std::string_view kOwnOptions[] = {"method", "delete_on_stop", "token", "basic_auth", "ca_file"};

// libcurl's global state, once per process before any handle (curl_global_init
// is not safe to race).
void curl_once() {
  static std::once_flag once;
  std::call_once(once, [] {
    if (curl_global_init(CURL_GLOBAL_DEFAULT) != CURLE_OK)
      throw Error(CM_EUNAVAILABLE, "pushgateway exporter: curl_global_init failed");
  });
}

// One path segment as the Pushgateway takes it: percent-encoded, or with
// "@base64" (URL-safe, padded) when it holds a '/' or is empty.
void append_segment(std::string& url, std::string_view label, std::string_view value) {
  auto pct = [&](std::string_view s) {
    static const char hex[] = "0123456789ABCDEF";
    for (unsigned char c : s) {
      bool plain = (c >= 'a' && c <= 'z') || (c >= 'A' && c <= 'Z') || (c >= '0' && c <= '9') || c == '-' ||
                   c == '_' || c == '.' || c == '~';
      if (plain) {
        url.push_back(static_cast<char>(c));
      } else {
        url.push_back('%');
        url.push_back(hex[c >> 4]);
        url.push_back(hex[c & 15]);
      }
    }
  };
  url.push_back('/');
  url.append(label);
  if (value.empty() || value.find('/') != std::string_view::npos) {
    static const char b64[] = "ABCDEFGHIJKLMNOPQRSTUVWXYZabcdefghijklmnopqrstuvwxyz0123456789-_";
    url.append("@base64/");
    if (value.empty()) {
      url.push_back('=');
      return;
    }
    size_t i = 0;
    for (; i + 2 < value.size(); i += 3) {
      uint32_t n = (static_cast<unsigned char>(value[i]) << 16) | (static_cast<unsigned char>(value[i + 1]) << 8) |
                   static_cast<unsigned char>(value[i + 2]);
      for (int k = 18; k >= 0; k -= 6) url.push_back(b64[(n >> k) & 63]);
    }
    if (i < value.size()) {
      uint32_t n = static_cast<unsigned char>(value[i]) << 16;
      if (i + 1 < value.size()) n |= static_cast<unsigned char>(value[i + 1]) << 8;
      url.push_back(b64[(n >> 18) & 63]);
      url.push_back(b64[(n >> 12) & 63]);
      url.push_back(i + 1 < value.size() ? b64[(n >> 6) & 63] : '=');
      url.push_back('=');
    }
    return;
  }
  url.push_back('/');
  pct(value);
}

size_t keep_body(char* p, size_t size, size_t n, void* out) {
  auto* s = static_cast<std::string*>(out);
  if (s->size() < 512) s->append(p, std::min(size * n, 512 - s->size()));
  return size * n;
}

class PushgatewayExporter final : public Exporter {
 public:
  PushgatewayExporter(cm_registry& r, ExporterCommon c, const Uri& uri) : Exporter(r, std::move(c)), pid_(getpid()) {
    const Options& o = uri.query;
    method_ = o.get("method", "put");
    if (method_ != "put" && method_ != "post")
      throw Error(CM_EINVAL, "pushgateway exporter: option method= must be put or post, got \"" + method_ + "\"");
    delete_on_stop_ = o.get_bool("delete_on_stop", false);
    token_ = o.get("token", "");
    basic_auth_ = o.get("basic_auth", "");
    ca_file_ = o.get("ca_file", "");
    if (!basic_auth_.empty() && basic_auth_.find(':') == std::string::npos)
      throw Error(CM_EINVAL, "pushgateway exporter: option basic_auth= must be user:password");
    if (!token_.empty() && !basic_auth_.empty())
      throw Error(CM_EINVAL, "pushgateway exporter: give token= or basic_auth=, not both");
    url_ = group_url(uri);
    curl_once();
    curl_ = curl_easy_init();
    if (!curl_) throw Error(CM_ENOMEM, "pushgateway exporter: curl_easy_init failed");
    headers_ = curl_slist_append(headers_, "Content-Type: text/plain; version=0.0.4; charset=utf-8");
    if (!token_.empty()) headers_ = curl_slist_append(headers_, ("Authorization: Bearer " + token_).c_str());
    if (!headers_) throw Error(CM_ENOMEM, "pushgateway exporter: out of memory");
  }

  ~PushgatewayExporter() override {
    // A fork() child's copy never deletes its parent's group.
    if (delete_on_stop_ && getpid() == pid_) {
      try {
        request("DELETE", nullptr);
      } catch (...) {
        // Best effort: the registry or the exporter is going away.
      }
    }
    curl_slist_free_all(headers_);
    if (curl_) curl_easy_cleanup(curl_);
  }

  bool collect() const noexcept override { return true; }
  // Every interval, changed or not: a restarted gateway (which forgets its
  // groups unless it persists them) gets the values back at the next push,
  // and push_time_seconds says the job is alive.
  Want want() const noexcept override { return Want::All; }

 protected:
  // The whole exposition replaces (put) or updates (post) the group.
  void send(std::vector<SinkSeries>&) override {
    OutBuf body;
    render_text(reg_, body, false);
    request(method_ == "put" ? "PUT" : "POST", &body);
  }

 private:
  std::string group_url(const Uri& uri) {
    // The path from the URI as written (the parsed location is decoded,
    // which would let an encoded '/' split a segment).
    std::string raw = uri.text.substr(uri.text.find("://") + 3);
    raw = raw.substr(0, raw.find('?'));
    size_t slash = raw.find('/');
    std::string hostport = raw.substr(0, slash);
    if (hostport.empty() || slash == std::string::npos)
      throw Error(CM_EINVAL, "pushgateway exporter: \"" + uri.text + "\" needs host:port/metrics/job/<job>");
    std::vector<std::string> seg;
    for (std::string_view s : split(std::string_view(raw).substr(slash + 1), '/'))
      seg.push_back(percent_decode(s, "pushgateway exporter path"));
    if (seg.size() < 3 || seg[0] != "metrics" || seg[1] != "job" || seg[2].empty() || seg.size() % 2 != 1)
      throw Error(CM_EINVAL, "pushgateway exporter: the path of \"" + uri.text +
                                 "\" must be /metrics/job/<job>[/<label>/<value>...]");
    std::string url = (uri.scheme == "pushgateway+https" ? "https://" : "http://") + hostport + "/metrics";
    append_segment(url, "job", seg[2]);
    for (size_t i = 3; i + 1 < seg.size(); i += 2) {
      if (!valid_label_name(seg[i]) || seg[i] == "job")
        throw Error(CM_EINVAL, "pushgateway exporter: \"" + seg[i] + "\" is not a grouping label name");
      append_segment(url, seg[i], seg[i + 1]);
    }
    return url;
  }

  void request(const char* verb, OutBuf* body) {
    std::string reply;
    curl_easy_reset(curl_);
    curl_easy_setopt(curl_, CURLOPT_URL, url_.c_str());
    curl_easy_setopt(curl_, CURLOPT_NOSIGNAL, 1L);
    curl_easy_setopt(curl_, CURLOPT_TIMEOUT_MS, static_cast<long>(common().timeout_ms));
    curl_easy_setopt(curl_, CURLOPT_CONNECTTIMEOUT_MS, static_cast<long>(common().timeout_ms));
    curl_easy_setopt(curl_, CURLOPT_CUSTOMREQUEST, verb);
    curl_easy_setopt(curl_, CURLOPT_HTTPHEADER, headers_);
    curl_easy_setopt(curl_, CURLOPT_PROTOCOLS_STR, "http,https");
    curl_easy_setopt(curl_, CURLOPT_WRITEFUNCTION, keep_body);
    curl_easy_setopt(curl_, CURLOPT_WRITEDATA, &reply);
    if (body) {
      std::string_view b = body->view();
      curl_easy_setopt(curl_, CURLOPT_POSTFIELDSIZE_LARGE, static_cast<curl_off_t>(b.size()));
      curl_easy_setopt(curl_, CURLOPT_POSTFIELDS, b.data());
    }
    if (!basic_auth_.empty()) {
      curl_easy_setopt(curl_, CURLOPT_HTTPAUTH, CURLAUTH_BASIC);
      curl_easy_setopt(curl_, CURLOPT_USERPWD, basic_auth_.c_str());
    }
    if (!ca_file_.empty()) curl_easy_setopt(curl_, CURLOPT_CAINFO, ca_file_.c_str());
    CURLcode rc = curl_easy_perform(curl_);
    if (rc == CURLE_OPERATION_TIMEDOUT)
      throw Error(CM_ETIMEOUT, "pushgateway exporter \"" + name() + "\": " + verb + " " + url_ + " took over " +
                                   std::to_string(common().timeout_ms) + " ms");
    if (rc != CURLE_OK)
      throw Error(CM_EUNAVAILABLE, "pushgateway exporter \"" + name() + "\": " + verb + " " + url_ + ": " +
                                       curl_easy_strerror(rc));
    long status = 0;
    curl_easy_getinfo(curl_, CURLINFO_RESPONSE_CODE, &status);
    if (status < 200 || status > 299) {
      for (char& ch : reply)
        if (ch == '\n' || ch == '\r') ch = ' ';
      throw Error(status >= 500 ? CM_EUNAVAILABLE : CM_EBACKEND,
                  "pushgateway exporter \"" + name() + "\": " + verb + " " + url_ + " answered " +
                      std::to_string(status) + (reply.empty() ? "" : ": " + reply));
    }
  }

  pid_t pid_;
  std::string method_;
  bool delete_on_stop_ = false;
  std::string token_, basic_auth_, ca_file_;
  std::string url_;
  CURL* curl_ = nullptr;
  curl_slist* headers_ = nullptr;
};

std::unique_ptr<Exporter> make(cm_registry& r, const Uri& uri) {
  ExporterCommon c = common_options(uri.query, kOwnOptions, "pushgateway");
  return std::make_unique<PushgatewayExporter>(r, std::move(c), uri);
}

}  // namespace

const ExporterSpec& pushgateway_exporter_spec() {
  static constexpr ExporterSpec kSpec{"pushgateway", kSchemes, make};
  return kSpec;
}

}  // namespace cm
