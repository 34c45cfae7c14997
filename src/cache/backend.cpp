// SPDX-License-Identifier: Apache-2.0
// make_backend: the URI's scheme picks a spec of the backend table.
#include "cache/backend.h"

#include "cache/backend_table.h"
#include "util/uri.h"

namespace cm {

std::unique_ptr<Backend> make_backend(const Uri& uri, BackendEvents* events) {
  return backend_spec(uri).make(uri, events);
}

}  // namespace cm
