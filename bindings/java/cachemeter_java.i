/* bindings/java/cachemeter_java.i: the Java module over cachemeter.i. The
 * typemaps below must come before cachemeter.i's %include of the headers; the
 * catalogue (what converts what, who frees what) is bindings/README.md.
 *
 * Generated into package org.cachemeter as the package-private classes CM and
 * CMJNI: the public API is the hand-written layer beside them (src/). Handles
 * cross as Java longs that only that layer holds; it frees each exactly once. */
%module CM

%{
#include <cachemeter/cachemeter.h>
#include "cmj.h"
%}

%include <enumtypeunsafe.swg>
%javaconst(1);
%pragma(java) moduleclassmodifiers="final class"
%pragma(java) jniclassclassmodifiers="final class"
%typemap(javaclassmodifiers) enum SWIGTYPE "final class"
%pragma(java) jniclasscode=%{
  static { Native.load(); }
%}

/* No proxy classes for the handle structs (cachemeter.i defines them empty):
 * handles are longs, see #2. */
%ignore cm_registry;
%ignore cm_family;
%ignore cm_series;
%ignore cm_cache;
%ignore cm_server;

%include "typemaps_java.i"
%include "cachemeter.i"

/* ---- the frees cachemeter.i leaves unwrapped, for close() only ------------- */
%rename(registry_free) cmj_registry_free;
%rename(cache_close) cmj_cache_close;
%rename(server_stop) cmj_server_stop;
void cmj_registry_free(cm_registry *reg);
void cmj_cache_close(cm_cache *c);
void cmj_server_stop(cm_server *s);
