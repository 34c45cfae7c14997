// make_backend: the URI scheme picks the backend class.
#include "cache/backend.h"

#include "core/error.h"
#include "backends/memory.h"
#if CM_WITH_SQLITE
#include "backends/sqlite.h"
#endif
#if CM_WITH_REDIS
#include "backends/redis.h"
#endif
#include "util/uri.h"

namespace cm {

std::unique_ptr<Backend> make_backend(const Uri& uri, BackendEvents* events) {
  if (uri.scheme == "memory") return make_memory_backend(uri, events);
#if CM_WITH_SQLITE
  if (uri.scheme == "sqlite") return make_sqlite_backend(uri, events);
#endif
#if CM_WITH_REDIS
  if (uri.scheme == "redis" || uri.scheme == "redis+unix") return make_redis_backend(uri, events);
#endif
  constexpr const char* kSupported = "memory"
#if CM_WITH_SQLITE
                                     ", sqlite"
#endif
#if CM_WITH_REDIS
                                     ", redis, redis+unix"
#endif
#if !CM_WITH_SQLITE
                                     "; sqlite needs a build with CM_WITH_SQLITE=ON"
#endif
#if !CM_WITH_REDIS
                                     "; redis needs a build with CM_WITH_REDIS=ON"
#endif
      ;
  throw Error(CM_EINVAL, "uri \"" + uri.text + "\": unknown scheme \"" + uri.scheme + "\" (supported: " +
                             kSupported + ")");
}

}  // namespace cm
