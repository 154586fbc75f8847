// The clock shim's contract with whoever preloads it (`tern verify`'s LocalCluster): the
// environment variable naming the offset file. The library exports nothing else of its own; it
// replaces the C library's wall-clock calls (see clock_shim.c).
#ifndef TERN_CLOCK_SHIM_H
#define TERN_CLOCK_SHIM_H

#define TERN_CLOCK_OFFSET_FILE_VARIABLE "TERN_CLOCK_OFFSET_FILE"

#endif
