# Fuzz targets of the SDK's SIP library (junction::sip) and of proto/sdp.hpp.
set(JN_SIP_FUZZ_DIR ${CMAKE_CURRENT_LIST_DIR})
foreach(t sip_message sip_framing sip_uri sip_auth sdp)
  junction_add_fuzz_target(fuzz_${t} SOURCES ${JN_SIP_FUZZ_DIR}/fuzz_${t}.cpp
    CORPUS ${JN_SIP_FUZZ_DIR}/../corpus/${t} LIBS junction_sip)
endforeach()
