/* SPDX-License-Identifier: Apache-2.0 */
// Ownership of hiredis objects, shared by the redis backend and its
// invalidation listener: contexts and replies freed by unique_ptr.
#pragma once

#include <hiredis/hiredis.h>

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

}  // namespace cm::hiredis
