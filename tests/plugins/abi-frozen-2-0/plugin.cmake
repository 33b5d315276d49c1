junction_add_plugin(abi-frozen-2-0 ${CMAKE_CURRENT_LIST_DIR}/abi_frozen_2_0.c)

# The live ABI against the frozen 2.0 header: a field moved or resized since 2.0 fails this build.
set(JN_ABI_LAYOUT_CHECK ${CMAKE_BINARY_DIR}/abi_layout_check_2_0.cpp)
add_custom_command(OUTPUT ${JN_ABI_LAYOUT_CHECK}
  COMMAND ${Python3_EXECUTABLE} ${CMAKE_SOURCE_DIR}/tests/abi/gen_layout_check.py
          ${CMAKE_SOURCE_DIR}/tests/abi/frozen/abi_2_0.h ${JN_ABI_LAYOUT_CHECK}
  DEPENDS ${CMAKE_SOURCE_DIR}/tests/abi/gen_layout_check.py ${CMAKE_SOURCE_DIR}/tests/abi/abi_fields.py
          ${CMAKE_SOURCE_DIR}/tests/abi/frozen/abi_2_0.h ${CMAKE_SOURCE_DIR}/sdk/include/junction/abi.h
  COMMENT "ABI layout check against the frozen 2.0 header")
add_library(abi_layout_check_2_0 OBJECT ${JN_ABI_LAYOUT_CHECK})
target_link_libraries(abi_layout_check_2_0 PRIVATE junction_sdk)
