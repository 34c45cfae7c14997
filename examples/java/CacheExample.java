// SPDX-License-Identifier: Apache-2.0
// examples/java/CacheExample.java: a registry, a counter, a cache and its
// metrics from Java, with nothing but the jar on the class path:
//   java -cp cachemeter.jar CacheExample.java
// (tests/java/check_jar.sh runs exactly that from an empty directory).
import org.cachemeter.Cache;
import org.cachemeter.CachemeterException;
import org.cachemeter.Registry;

public class CacheExample {
  public static void main(String[] args) {
    try (Registry reg = new Registry()) {
      reg.counter("jobs", "Jobs done.", "queue").labels("mail").inc(3);
      try (Cache users = Cache.open("memory://?max_entries=1000", "users", reg)) {
        users.set("alice".getBytes(), "admin".getBytes());
        System.out.println("get=" + new String(users.get("alice".getBytes())));
        byte[] bob = users.getOrLoad("bob".getBytes(), key -> ("loaded:" + new String(key)).getBytes());
        System.out.println("loaded=" + new String(bob));
        for (String line : reg.render().split("\n")) {
          if (line.startsWith("jobs_total") || line.startsWith("cachemeter_cache_hits_total")) System.out.println(line);
        }
      }
      try {
        Cache.open("carrier-pigeon://coop", "bad", reg);
      } catch (CachemeterException e) {
        System.out.println("refused: " + e.status());  // the library's message: e.getMessage()
      }
    }
  }
}
