#ifndef CCRC32C_H
#define CCRC32C_H

#include <stddef.h>
#include <stdint.h>

/// Extends a CRC32C (Castagnoli) with `length` bytes. Start with 0; the result of one call
/// is the `crc` of the next, so a stream can be checksummed piece by piece.
/// Uses the SSE4.2 `crc32` instruction when the CPU has it, a table otherwise.
uint32_t ccrc32c_extend(uint32_t crc, const void *data, size_t length);

/// The table-driven path alone, whatever the CPU: lets tests check the two paths agree.
uint32_t ccrc32c_extend_portable(uint32_t crc, const void *data, size_t length);

#endif
