# junction_add_plugin(NAME SOURCES...): builds a Junction plugin the way the core expects it.
# Usable in-tree and by vendors building against sdk/ alone:
#   set(JUNCTION_SDK /path/to/junction/sdk)
#   include(${JUNCTION_SDK}/cmake/junction_plugin.cmake)
#   junction_add_plugin(my-plugin src/my_plugin.cpp)
# The result is NAME.so (no lib prefix) with hidden visibility and no STB_GNU_UNIQUE symbols, so
# the core can dlclose it on reload and unload.
get_filename_component(JUNCTION_SDK_DIR "${CMAKE_CURRENT_LIST_DIR}/.." ABSOLUTE)
find_package(nlohmann_json REQUIRED)
if(NOT TARGET junction_sdk)
  add_library(junction_sdk INTERFACE)
  target_include_directories(junction_sdk INTERFACE ${JUNCTION_SDK_DIR}/include)
  target_link_libraries(junction_sdk INTERFACE nlohmann_json::nlohmann_json)
endif()
# Protocol libraries shared by plugins (sdk/src/NAME/*.cpp, headers in include/junction/NAME/):
# static, position-independent, hidden visibility, so each plugin carries its own copy and no
# symbol crosses a plugin boundary. A plugin links them as junction::sip, junction::media, ...
# They use no libuv, no threads and no globals: I/O and timers come from the host through the
# plugin. Built here (not in sdk/CMakeLists.txt) so a vendor building against sdk/ alone gets them.
if(DEFINED JN_PLUGIN_DIR)
  set(JN_PLUGIN_DIR_FOR_GLUE ${JN_PLUGIN_DIR})
else()
  set(JN_PLUGIN_DIR_FOR_GLUE ${CMAKE_BINARY_DIR}/plugins)
endif()
foreach(jn_sdk_lib sip media webrtc rtmp audio)
  if(NOT TARGET junction_${jn_sdk_lib} AND EXISTS ${JUNCTION_SDK_DIR}/src/${jn_sdk_lib})
    file(GLOB jn_sdk_lib_sources CONFIGURE_DEPENDS ${JUNCTION_SDK_DIR}/src/${jn_sdk_lib}/*.cpp)
    if(jn_sdk_lib_sources)
      add_library(junction_${jn_sdk_lib} STATIC ${jn_sdk_lib_sources})
      target_link_libraries(junction_${jn_sdk_lib} PUBLIC junction_sdk)
      set_target_properties(junction_${jn_sdk_lib} PROPERTIES POSITION_INDEPENDENT_CODE ON
        CXX_STANDARD 20 CXX_STANDARD_REQUIRED ON
        CXX_VISIBILITY_PRESET hidden VISIBILITY_INLINES_HIDDEN ON)
      # gcc only: clang (the fuzz build) has no STB_GNU_UNIQUE and refuses the flag.
      target_compile_options(junction_${jn_sdk_lib} PRIVATE $<$<AND:$<COMPILE_LANGUAGE:CXX>,$<CXX_COMPILER_ID:GNU>>:-fno-gnu-unique>)
      add_library(junction::${jn_sdk_lib} ALIAS junction_${jn_sdk_lib})
      if(jn_sdk_lib STREQUAL "sip")
        # Digest hashes (MD5, SHA-256), HMAC nonces and random branches/tags come from libcrypto.
        find_package(OpenSSL REQUIRED)
        target_link_libraries(junction_sip PUBLIC OpenSSL::Crypto)
      elseif(jn_sdk_lib STREQUAL "webrtc")
        # DTLS-SRTP (OpenSSL over memory BIOs), SRTP (libsrtp2), data channels (usrsctp), RTP
        # packetizers from junction::media. libsrtp2 and usrsctp have process-wide state: pinned
        # through the core (host->library_pin) and initialised once per process (abi.h).
        find_package(OpenSSL REQUIRED)
        find_package(PkgConfig REQUIRED)
        pkg_check_modules(JN_SRTP2 REQUIRED IMPORTED_TARGET libsrtp2)
        pkg_check_modules(JN_USRSCTP REQUIRED IMPORTED_TARGET usrsctp)
        target_link_libraries(junction_webrtc PUBLIC OpenSSL::SSL OpenSSL::Crypto PkgConfig::JN_SRTP2
          PkgConfig::JN_USRSCTP junction_media)
        # usrsctp's output callback is one process-wide function pointer: it lives in this small
        # shared library (never unloaded: pinned through the core) rather than in a plugin that a
        # hot reload unmaps (include/junction/webrtc/sctp_glue.h). Next to the plugins, found
        # through their RUNPATH ($ORIGIN).
        if(NOT TARGET junction_sctp_glue)
          if(NOT CMAKE_C_COMPILER_LOADED)
            enable_language(C)  # the glue is plain C: no C++ runtime in a library kept resident
          endif()
          add_library(junction_sctp_glue SHARED ${JUNCTION_SDK_DIR}/src/sctp_glue/sctp_glue.c)
          target_include_directories(junction_sctp_glue PRIVATE ${JUNCTION_SDK_DIR}/include)
          target_link_libraries(junction_sctp_glue PRIVATE PkgConfig::JN_USRSCTP)
          set_target_properties(junction_sctp_glue PROPERTIES OUTPUT_NAME junction_sctp_glue
            LIBRARY_OUTPUT_DIRECTORY ${JN_PLUGIN_DIR_FOR_GLUE}
            C_VISIBILITY_PRESET hidden)
        endif()
        target_link_libraries(junction_webrtc PUBLIC junction_sctp_glue)
      elseif(jn_sdk_lib STREQUAL "rtmp")
        # RTMP publisher and FLV muxing of junction::media frames (no codec libraries: an AAC
        # encoder, when a plugin wants one, is the plugin's own dependency).
        target_link_libraries(junction_rtmp PUBLIC junction_media)
      elseif(jn_sdk_lib STREQUAL "audio")
        # Conference audio: G.711, Opus (libopus), the mix-minus mixer.
        find_package(PkgConfig REQUIRED)
        pkg_check_modules(JN_OPUS REQUIRED IMPORTED_TARGET opus)
        target_link_libraries(junction_audio PUBLIC PkgConfig::JN_OPUS)
      endif()
    endif()
  endif()
endforeach()
if(NOT DEFINED JN_PLUGIN_DIR)
  set(JN_PLUGIN_DIR ${CMAKE_BINARY_DIR}/plugins)
endif()
function(junction_add_plugin name)
  add_library(${name} MODULE ${ARGN})
  target_link_libraries(${name} PRIVATE junction_sdk)
  set_target_properties(${name} PROPERTIES PREFIX "" OUTPUT_NAME ${name}
    LIBRARY_OUTPUT_DIRECTORY ${JN_PLUGIN_DIR} INSTALL_RPATH "$ORIGIN"
    CXX_STANDARD 20 CXX_STANDARD_REQUIRED ON
    CXX_VISIBILITY_PRESET hidden C_VISIBILITY_PRESET hidden VISIBILITY_INLINES_HIDDEN ON)
  target_compile_options(${name} PRIVATE $<$<COMPILE_LANGUAGE:CXX>:-fno-gnu-unique>)
  if(NOT JN_SANITIZE)
    # Every symbol must resolve inside the plugin or its libraries: no reaching into the core.
    target_link_options(${name} PRIVATE -Wl,--no-undefined)
  endif()
endfunction()
