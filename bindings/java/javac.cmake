# SPDX-License-Identifier: Apache-2.0
# bindings/java/javac.cmake: compiles SWIG's generated .java files (GEN_DIR,
# whose names are known only once SWIG has run) with SOURCES ('|'-separated)
# into CLASSES and packs OUT. Run by the cachemeter.jar custom command (cmake -P).
string(REPLACE "|" ";" SOURCES "${SOURCES}")  # '|'-separated (CMakeLists.txt)
file(GLOB _generated ${GEN_DIR}/org/cachemeter/*.java)
if(NOT _generated)
  message(FATAL_ERROR "javac.cmake: no generated sources in ${GEN_DIR}")
endif()
file(REMOVE_RECURSE ${CLASSES})
file(MAKE_DIRECTORY ${CLASSES})
execute_process(
  COMMAND ${JAVAC} -encoding UTF-8 -Xlint:all -Xlint:-serial -Werror --release 11 -d ${CLASSES}
          ${_generated} ${SOURCES}
  RESULT_VARIABLE _rc)
if(NOT _rc EQUAL 0)
  message(FATAL_ERROR "javac failed (${_rc})")
endif()
# The native libraries ride in the jar (NATIVE_LIBS '|'-separated, into
# native/NATIVE_DIR/), where Native.load() finds and extracts them: the JNI
# library and libcachemeter.so.N, copied as files under their SONAME names.
if(NATIVE_LIBS)
  string(REPLACE "|" ";" NATIVE_LIBS "${NATIVE_LIBS}")
  file(MAKE_DIRECTORY ${CLASSES}/native/${NATIVE_DIR})
  # libs.txt: the names, in the order Native.load() loads them (dependencies first).
  set(_index "")
  foreach(_lib ${NATIVE_LIBS})
    string(REPLACE "=" ";" _pair "${_lib}")  # path=name
    list(GET _pair 0 _path)
    list(GET _pair 1 _name)
    file(REAL_PATH ${_path} _real)
    file(COPY_FILE ${_real} ${CLASSES}/native/${NATIVE_DIR}/${_name})
    string(PREPEND _index "${_name}\n")
  endforeach()
  file(WRITE ${CLASSES}/native/${NATIVE_DIR}/libs.txt "${_index}")
endif()
execute_process(COMMAND ${JAR} cf ${OUT} -C ${CLASSES} . RESULT_VARIABLE _rc)
if(NOT _rc EQUAL 0)
  message(FATAL_ERROR "jar failed (${_rc})")
endif()
