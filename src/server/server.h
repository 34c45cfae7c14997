/* SPDX-License-Identifier: Apache-2.0 */
// The embedded HTTP endpoint (only built with CM_WITH_HTTP).
#pragma once

#include <cachemeter/server.h>

#include <chrono>
#include <cstdint>
#include <memory>
#include <string>

#include "util/fork.h"

struct MHD_Daemon;
namespace cm {
class ServerAux;  // request deadlines and the /health checker (server.cpp)
}

struct cm_server {
  cm_registry* reg = nullptr;
  MHD_Daemon* daemon = nullptr;
  int port = -1;
  std::chrono::steady_clock::time_point started;
  std::string token, user, password;
  std::string tls_cert, tls_key;  // PEM, kept for the daemon's lifetime
  bool dashboard = true;          // GET / serves the dashboard (dashboard=on|off)
  cm_family* requests = nullptr;
  cm_family* durations = nullptr;
  std::unique_ptr<cm::ServerAux> aux;
  // fork(): a server is not inherited (its threads are the parent's); a
  // child's cm_server_stop leaves it alone (docs/threading.md, "fork()").
  uint64_t fork_generation = cm::fork::generation();

  cm_server() = default;
  cm_server(const cm_server&) = delete;
  cm_server& operator=(const cm_server&) = delete;
  // Stops the daemon: resumes every /health request waiting for a refresh,
  // closes every connection, joins the threads (the health checker's after
  // its check in flight, if any, returns: bounded by that backend's timeout).
  ~cm_server();
};

namespace cm {

// Starts a server (throws Error). reg NULL: the default registry.
std::unique_ptr<cm_server> start_server(cm_registry* reg, const char* listen, const char* options);

}  // namespace cm
