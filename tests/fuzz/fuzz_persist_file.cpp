// SPDX-License-Identifier: Apache-2.0
// cm_registry_load on mutated metrics files: the input is written as the
// file (in a private temporary directory) and loaded into a fresh registry,
// which is then rendered in all three formats. Seeds are real files written
// by cm_registry_persist (make_seeds.sh). Every failure must be a status of
// ours; a hang is caught by libFuzzer's -timeout (hostile schemas: see
// README.md, "known").
#include <cachemeter/cachemeter.h>

#include "fuzz_tmp.h"
#include "fuzz_util.h"

extern "C" int LLVMFuzzerTestOneInput(const uint8_t* data, size_t size) {
  const std::string& dir = fuzz::tmp_dir();
  std::string path = dir + "/metrics.db";
  fuzz::clear_dir(dir);
  fuzz::write_file(path, data, size);
  cm_registry* reg = nullptr;
  if (cm_registry_new(&reg, nullptr) != CM_OK) fuzz::fail("cm_registry_new", cm_errmsg());
  int rc = cm_registry_load(reg, path.c_str());
  fuzz::check_status(rc, "cm_registry_load");
  fuzz::render_all(reg);
  cm_registry_free(reg);
  fuzz::clear_dir(dir);
  return 0;
}
