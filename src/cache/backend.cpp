// make_backend: the URI scheme picks the backend class.
#include "cache/backend.h"

#include "api/error.h"
#include "backends/memory.h"
#include "util/uri.h"

namespace cm {

std::unique_ptr<Backend> make_backend(const Uri& uri, BackendEvents* events) {
  if (uri.scheme == "memory") return make_memory_backend(uri, events);
  throw Error(CM_EINVAL, "uri \"" + uri.text + "\": unknown scheme \"" + uri.scheme + "\" (supported: memory)");
}

}  // namespace cm
