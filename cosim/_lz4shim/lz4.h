/* Stand-in for <lz4.h>, used only when the system has no LZ4 development files.
 *
 * Verilator 5.48's FST writer (include/fstcpp) compresses with LZ4_compress_default and links
 * -llz4. This header implements the two functions it calls by emitting a valid LZ4 block made
 * of one literal-only sequence (no compression), which every LZ4 decoder (GTKWave, Surfer)
 * reads. qhw.cosim.runner adds this folder to the include path and an empty liblz4.a to the
 * library path. Waveform files are larger than with the real library, nothing else differs.
 */
#ifndef QHW_LZ4_SHIM_H
#define QHW_LZ4_SHIM_H

#include <string.h>

static inline int LZ4_compressBound(int n) { return n + n / 255 + 16; }

static inline int LZ4_compress_default(const char *src, char *dst, int n, int capacity) {
    unsigned char *o = (unsigned char *)dst;
    if (capacity < LZ4_compressBound(n)) return 0;
    if (n < 15) {
        *o++ = (unsigned char)(n << 4);
    } else {
        int rest = n - 15;
        *o++ = 0xF0;
        while (rest >= 255) { *o++ = 255; rest -= 255; }
        *o++ = (unsigned char)rest;
    }
    memcpy(o, src, (size_t)n);
    o += n;
    return (int)(o - (unsigned char *)dst);
}

#endif
