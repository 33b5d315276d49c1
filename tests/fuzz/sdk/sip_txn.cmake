# The SIP stack's transactions fed random message sequences over the fake environment.
if(TARGET junction_sip)
  junction_add_fuzz_target(fuzz_sip_stack SOURCES ${CMAKE_CURRENT_LIST_DIR}/fuzz_sip_stack.cpp
    CORPUS ${CMAKE_CURRENT_LIST_DIR}/../corpus/sip_stack LIBS junction_sip)
endif()
