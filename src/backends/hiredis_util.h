/* SPDX-License-Identifier: Apache-2.0 */
// Ownership of hiredis objects, shared by the redis backend, its
// invalidation listener and its sentinel resolver: contexts and replies freed
// by unique_ptr, and SIGPIPE blocked around a blocking call.
#pragma once

#include <hiredis/hiredis.h>
#include <pthread.h>
#include <signal.h>

#include <cerrno>
#include <ctime>
#include <memory>

namespace cm::hiredis {

struct CtxFree {
  void operator()(redisContext* c) const { redisFree(c); }
};
struct ReplyFree {
  void operator()(redisReply* r) const { freeReplyObject(r); }
};
using Ctx = std::unique_ptr<redisContext, CtxFree>;
using Reply = std::unique_ptr<redisReply, ReplyFree>;

// Blocks SIGPIPE in the calling thread around a hiredis call: hiredis 0.14
// sends with write(), and a write to a connection the server has reset must
// fail with EPIPE, not kill the host program. A library must not change the
// process's signal disposition, so this is per call: two pthread_sigmask
// calls (~0.3 us against a round trip of tens), plus, only after a failed
// call, consuming the SIGPIPE it left pending. SIGPIPE from write() is
// directed at the writing thread, so none is pending for it beforehand
// unless the caller blocks SIGPIPE itself, in which case nothing is done.
class SigpipeBlock {
 public:
  SigpipeBlock() {
    sigemptyset(&pipe_);
    sigaddset(&pipe_, SIGPIPE);
    active_ = pthread_sigmask(SIG_BLOCK, &pipe_, &old_) == 0 && sigismember(&old_, SIGPIPE) != 1;
  }
  // After a call that failed: drops a SIGPIPE it raised.
  void failed() {
    if (!active_) return;
    sigset_t pending;
    sigemptyset(&pending);
    sigpending(&pending);
    if (sigismember(&pending, SIGPIPE) == 1) {
      timespec zero{0, 0};
      while (sigtimedwait(&pipe_, nullptr, &zero) < 0 && errno == EINTR) {
      }
    }
  }
  ~SigpipeBlock() {
    if (active_) pthread_sigmask(SIG_SETMASK, &old_, nullptr);
  }
  SigpipeBlock(const SigpipeBlock&) = delete;
  SigpipeBlock& operator=(const SigpipeBlock&) = delete;

 private:
  sigset_t pipe_, old_;
  bool active_ = false;
};

}  // namespace cm::hiredis
