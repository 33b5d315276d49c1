# Fuzz targets of sdk/media's MPEG-PS demuxer and RFC 4571 deframer (junction_media).
junction_add_fuzz_target(fuzz_ps_demux SOURCES ${CMAKE_CURRENT_LIST_DIR}/fuzz_ps_demux.cpp
  CORPUS ${CMAKE_CURRENT_LIST_DIR}/../corpus/ps_demux LIBS junction_media)
junction_add_fuzz_target(fuzz_rfc4571 SOURCES ${CMAKE_CURRENT_LIST_DIR}/fuzz_rfc4571.cpp
  CORPUS ${CMAKE_CURRENT_LIST_DIR}/../corpus/rfc4571 LIBS junction_media)
