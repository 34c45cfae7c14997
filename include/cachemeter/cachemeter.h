/* SPDX-License-Identifier: Apache-2.0 */
/* cachemeter/cachemeter.h: the umbrella header. Include this one. */
#ifndef CACHEMETER_H
#define CACHEMETER_H

#include "common.h"
#include "metrics.h"
#include "cache.h"
#include "server.h"
#include "export.h"

#endif /* CACHEMETER_H */
