// SPDX-License-Identifier: Apache-2.0
// A StatsD backend for tests/common/push_receivers.py: appends what the daemon
// aggregated at each flush as one JSON line to config.jsonBackendFile, so the
// test reads the server's own counts (counters, gauges, timer counts and sums).
'use strict';
const fs = require('fs');

exports.init = function (startupTime, config, events) {
  const file = config.jsonBackendFile;
  events.on('flush', function (timestamp, metrics) {
    const timers = {};
    for (const key of Object.keys(metrics.timer_data || {})) {
      const t = metrics.timer_data[key];
      timers[key] = { count: t.count, sum: t.sum };
    }
    fs.appendFileSync(file, JSON.stringify({
      counters: metrics.counters,
      gauges: metrics.gauges,
      timers: timers,
      timer_counters: metrics.timer_counters,
    }) + '\n');
  });
  return true;
};
