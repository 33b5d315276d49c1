junction_add_plugin(abi-frozen-2-1 ${CMAKE_CURRENT_LIST_DIR}/abi_frozen_2_1.c)

# The live ABI against the frozen 2.1 header: a field moved or resized since 2.1 fails this build.
set(JN_ABI_LAYOUT_CHECK_2_1 ${CMAKE_BINARY_DIR}/abi_layout_check_2_1.cpp)
add_custom_command(OUTPUT ${JN_ABI_LAYOUT_CHECK_2_1}
  COMMAND ${Python3_EXECUTABLE} ${CMAKE_SOURCE_DIR}/tests/abi/gen_layout_check.py
          ${CMAKE_SOURCE_DIR}/tests/abi/frozen/abi_2_1.h ${JN_ABI_LAYOUT_CHECK_2_1}
  DEPENDS ${CMAKE_SOURCE_DIR}/tests/abi/gen_layout_check.py ${CMAKE_SOURCE_DIR}/tests/abi/abi_fields.py
          ${CMAKE_SOURCE_DIR}/tests/abi/frozen/abi_2_1.h ${CMAKE_SOURCE_DIR}/sdk/include/junction/abi.h
  COMMENT "ABI layout check against the frozen 2.1 header")
add_library(abi_layout_check_2_1 OBJECT ${JN_ABI_LAYOUT_CHECK_2_1})
target_link_libraries(abi_layout_check_2_1 PRIVATE junction_sdk)
add_dependencies(abi-frozen-2-1 abi_layout_check_2_1)
