#include "crc32c.h"

#include <pthread.h>
#include <string.h>

/* Reflected Castagnoli polynomial. */
#define CRC32C_POLY 0x82F63B78u

static uint32_t crc32c_table[8][256];
/* Built once, by whichever thread checksums first: pthread_once makes the others wait for it. */
static pthread_once_t crc32c_table_once = PTHREAD_ONCE_INIT;

static void crc32c_init_table(void) {
    for (uint32_t n = 0; n < 256; n++) {
        uint32_t crc = n;
        for (int k = 0; k < 8; k++) crc = (crc & 1) ? (crc >> 1) ^ CRC32C_POLY : crc >> 1;
        crc32c_table[0][n] = crc;
    }
    for (uint32_t n = 0; n < 256; n++) {
        uint32_t crc = crc32c_table[0][n];
        for (int k = 1; k < 8; k++) {
            crc = crc32c_table[0][crc & 0xff] ^ (crc >> 8);
            crc32c_table[k][n] = crc;
        }
    }
}

static uint32_t crc32c_software(uint32_t crc, const unsigned char *p, size_t len) {
    pthread_once(&crc32c_table_once, crc32c_init_table);
    while (len >= 8) {
        uint64_t word;
        memcpy(&word, p, 8);
        word ^= crc;
        crc = crc32c_table[7][word & 0xff] ^ crc32c_table[6][(word >> 8) & 0xff] ^
              crc32c_table[5][(word >> 16) & 0xff] ^ crc32c_table[4][(word >> 24) & 0xff] ^
              crc32c_table[3][(word >> 32) & 0xff] ^ crc32c_table[2][(word >> 40) & 0xff] ^
              crc32c_table[1][(word >> 48) & 0xff] ^ crc32c_table[0][word >> 56];
        p += 8;
        len -= 8;
    }
    while (len--) crc = crc32c_table[0][(crc ^ *p++) & 0xff] ^ (crc >> 8);
    return crc;
}

#if defined(__x86_64__)
#include <nmmintrin.h>

/* The crc32 instruction takes 3 cycles and can start one each cycle: a single stream of it runs
   at a third of the speed the CPU has. So a long buffer is cut into three stretches that are
   checksummed side by side, each from a zero register, and the three registers are then joined:
   the register of A followed by B is the register of A shifted over len(B) zero bytes, xor the
   register of B. A shift over a fixed length is linear in the register, so it is four table
   lookups, one per byte of the register. */
#define CRC32C_LONG 8192
#define CRC32C_SHORT 256

static uint32_t crc32c_shift_long[4][256];
static uint32_t crc32c_shift_short[4][256];
static pthread_once_t crc32c_shift_once = PTHREAD_ONCE_INIT;

__attribute__((target("sse4.2")))
static uint32_t crc32c_zeros(uint32_t crc, size_t length) {
    uint64_t c = crc;
    for (size_t i = 0; i < length / 8; i++) c = _mm_crc32_u64(c, 0);
    return (uint32_t)c;
}

/* Tables of the shift over `length` zero bytes: built from the 32 one-bit registers, by linearity. */
static void crc32c_make_shift(uint32_t table[4][256], size_t length) {
    uint32_t bit[32];
    for (int b = 0; b < 32; b++) bit[b] = crc32c_zeros(1u << b, length);
    for (int k = 0; k < 4; k++) {
        for (uint32_t v = 0; v < 256; v++) {
            uint32_t shifted = 0;
            for (int b = 0; b < 8; b++) {
                if (v & (1u << b)) shifted ^= bit[8 * k + b];
            }
            table[k][v] = shifted;
        }
    }
}

static void crc32c_init_shift(void) {
    crc32c_make_shift(crc32c_shift_long, CRC32C_LONG);
    crc32c_make_shift(crc32c_shift_short, CRC32C_SHORT);
}

static uint32_t crc32c_shift(uint32_t table[4][256], uint32_t crc) {
    return table[0][crc & 0xff] ^ table[1][(crc >> 8) & 0xff] ^ table[2][(crc >> 16) & 0xff] ^ table[3][crc >> 24];
}

/* Checksums three stretches of `stretch` bytes each, side by side, and joins them. */
__attribute__((target("sse4.2")))
static uint64_t crc32c_three_ways(uint64_t c0, const unsigned char **cursor, size_t stretch, uint32_t table[4][256]) {
    const unsigned char *p = *cursor;
    const unsigned char *end = p + stretch;
    uint64_t c1 = 0, c2 = 0;
    while (p < end) {
        uint64_t w0, w1, w2;
        memcpy(&w0, p, 8);
        memcpy(&w1, p + stretch, 8);
        memcpy(&w2, p + 2 * stretch, 8);
        c0 = _mm_crc32_u64(c0, w0);
        c1 = _mm_crc32_u64(c1, w1);
        c2 = _mm_crc32_u64(c2, w2);
        p += 8;
    }
    c0 = crc32c_shift(table, (uint32_t)c0) ^ c1;
    c0 = crc32c_shift(table, (uint32_t)c0) ^ c2;
    *cursor = p + 2 * stretch;
    return c0;
}

__attribute__((target("sse4.2")))
static uint32_t crc32c_hardware(uint32_t crc, const unsigned char *p, size_t len) {
    pthread_once(&crc32c_shift_once, crc32c_init_shift);
    uint64_t c = crc;
    while (len >= 3 * CRC32C_LONG) {
        c = crc32c_three_ways(c, &p, CRC32C_LONG, crc32c_shift_long);
        len -= 3 * CRC32C_LONG;
    }
    while (len >= 3 * CRC32C_SHORT) {
        c = crc32c_three_ways(c, &p, CRC32C_SHORT, crc32c_shift_short);
        len -= 3 * CRC32C_SHORT;
    }
    while (len >= 8) {
        uint64_t word;
        memcpy(&word, p, 8);
        c = _mm_crc32_u64(c, word);
        p += 8;
        len -= 8;
    }
    uint32_t c32 = (uint32_t)c;
    while (len--) c32 = _mm_crc32_u8(c32, *p++);
    return c32;
}

static int crc32c_has_sse42(void) {
    static int cached = -1;
    int value = __atomic_load_n(&cached, __ATOMIC_RELAXED);
    if (value < 0) {
        __builtin_cpu_init();
        value = __builtin_cpu_supports("sse4.2") ? 1 : 0;
        __atomic_store_n(&cached, value, __ATOMIC_RELAXED);
    }
    return value;
}
#endif

uint32_t ccrc32c_extend(uint32_t crc, const void *data, size_t length) {
    const unsigned char *p = (const unsigned char *)data;
    crc = ~crc;
#if defined(__x86_64__)
    if (crc32c_has_sse42()) return ~crc32c_hardware(crc, p, length);
#endif
    return ~crc32c_software(crc, p, length);
}

uint32_t ccrc32c_extend_portable(uint32_t crc, const void *data, size_t length) {
    return ~crc32c_software(~crc, (const unsigned char *)data, length);
}
