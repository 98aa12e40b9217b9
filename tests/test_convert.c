/* The dtype conversions against known bit patterns, both directions: the library's (core/convert.c,
 * used by the backends) and the oracle's own decoders (check/oracle_problem.c), which must agree. */
#include <setjmp.h>
#include <stdarg.h>
#include <stddef.h>
#include <stdint.h>
#include <cmocka.h>
#include <math.h>
#include <stdio.h>
#include <string.h>

#include "oracle_problem.h"
#include "stile_internal.h"

static float f32_of(uint32_t u)
{
    float f;
    memcpy(&f, &u, 4);
    return f;
}

static uint32_t bits_of(float f)
{
    uint32_t u;
    memcpy(&u, &f, 4);
    return u;
}

typedef struct narrowing {
    uint32_t f32;  /* input float bits */
    uint16_t want; /* the 16-bit pattern round-to-nearest-even gives */
    const char *what;
} narrowing;

static void expect_narrowing(const narrowing *c, size_t n, uint16_t (*fn)(float), const char *name)
{
    int bad = 0;
    for (size_t i = 0; i < n; i++) {
        uint16_t got = fn(f32_of(c[i].f32));
        if (got != c[i].want) {
            printf("  %s(0x%08X) = 0x%04X, want 0x%04X (%s)\n", name, (unsigned)c[i].f32, got, c[i].want, c[i].what);
            bad++;
        }
    }
    assert_int_equal(bad, 0);
}

static void test_float_to_bf16_rounds_to_nearest_even_and_keeps_specials(void **state)
{
    (void)state;
    static const narrowing c[] = {
        {0x3F800000u, 0x3F80, "1"},
        {0x3F808000u, 0x3F80, "tie 1 + 2^-8 rounds down to the even 0x3F80"},
        {0x3F818000u, 0x3F82, "tie rounds up to the even 0x3F82"},
        {0x3F808001u, 0x3F81, "just above a tie rounds up"},
        {0x3F817FFFu, 0x3F81, "just below a tie rounds down"},
        {0xBF818000u, 0xBF82, "negative tie rounds to even"},
        {0x00000000u, 0x0000, "+0"},
        {0x80000000u, 0x8000, "-0"},
        {0x7F800000u, 0x7F80, "+Inf"},
        {0xFF800000u, 0xFF80, "-Inf"},
        {0x7F7F0000u, 0x7F7F, "largest finite bf16"},
        {0x7F7F7FFFu, 0x7F7F, "below the tie above the largest finite stays finite"},
        {0x7F7F8000u, 0x7F80, "the tie above the largest finite overflows to +Inf"},
        {0x7F7FFFFFu, 0x7F80, "FLT_MAX overflows to +Inf"},
        {0xFF7FFFFFu, 0xFF80, "-FLT_MAX overflows to -Inf"},
        {0x00010000u, 0x0001, "smallest subnormal"},
        {0x007F0000u, 0x007F, "largest subnormal"},
        {0x00008000u, 0x0000, "subnormal tie rounds down to the even 0"},
        {0x00018000u, 0x0002, "subnormal tie rounds up to the even 0x0002"},
        {0x007F8000u, 0x0080, "tie above the largest subnormal rounds to the smallest normal"},
        {0x00000001u, 0x0000, "the smallest float subnormal rounds to 0"},
        {0x7FC00000u, 0x7FC0, "quiet NaN stays quiet"},
        {0x7F800001u, 0x7FC0, "signalling NaN comes out quiet, not Inf"},
        {0xFF800001u, 0xFFC0, "negative signalling NaN: quiet, sign kept"},
        {0x7FFFFFFFu, 0x7FFF, "NaN with all fraction bits: no carry into the sign"},
    };
    expect_narrowing(c, sizeof c / sizeof c[0], stile_float_to_bf16, "stile_float_to_bf16");
}

static void test_float_to_half_rounds_to_nearest_even_and_keeps_specials(void **state)
{
    (void)state;
    static const narrowing c[] = {
        {0x3F800000u, 0x3C00, "1"},
        {0x3F801000u, 0x3C00, "tie 1 + 2^-11 rounds down to the even 0x3C00"},
        {0x3F803000u, 0x3C02, "tie 1 + 3*2^-11 rounds up to the even 0x3C02"},
        {0x3F801001u, 0x3C01, "just above a tie rounds up"},
        {0x3F802FFFu, 0x3C01, "just below a tie rounds down"},
        {0xBF803000u, 0xBC02, "negative tie rounds to even"},
        {0x00000000u, 0x0000, "+0"},
        {0x80000000u, 0x8000, "-0"},
        {0x7F800000u, 0x7C00, "+Inf"},
        {0xFF800000u, 0xFC00, "-Inf"},
        {0x477FE000u, 0x7BFF, "65504, the largest finite half"},
        {0x477FEFFFu, 0x7BFF, "just below 65520 stays finite"},
        {0x477FF000u, 0x7C00, "65520, the tie above the largest finite, overflows to +Inf"},
        {0xC77FF000u, 0xFC00, "-65520 overflows to -Inf"},
        {0x7F7FFFFFu, 0x7C00, "FLT_MAX overflows to +Inf"},
        {0x38800000u, 0x0400, "2^-14, the smallest normal half"},
        {0x33800000u, 0x0001, "2^-24, the smallest subnormal"},
        {0x387FC000u, 0x03FF, "1023 * 2^-24, the largest subnormal"},
        {0x33000000u, 0x0000, "2^-25: subnormal tie rounds down to the even 0"},
        {0x33000001u, 0x0001, "just above 2^-25 rounds up"},
        {0x33C00000u, 0x0002, "1.5 * 2^-24: subnormal tie rounds up to the even 0x0002"},
        {0x34200000u, 0x0002, "2.5 * 2^-24: subnormal tie rounds down to the even 0x0002"},
        {0x387FE000u, 0x0400, "1023.5 * 2^-24: tie above the largest subnormal rounds to the smallest normal"},
        {0x32800000u, 0x0000, "2^-26 rounds to 0"},
        {0x7FC00000u, 0x7E00, "quiet NaN"},
        {0x7F800001u, 0x7E00, "signalling NaN comes out a quiet NaN, not Inf"},
        {0xFF800001u, 0xFE00, "negative signalling NaN: quiet, sign kept"},
    };
    expect_narrowing(c, sizeof c / sizeof c[0], stile_float_to_half, "stile_float_to_half");
}

typedef struct widening {
    uint16_t bits;
    double want; /* exact; NaN: any NaN of the sign of `want` */
    const char *what;
} widening;

/* want NaN: the result must be a NaN of the same sign, and quiet if quiet_nan (a double or float
 * quiet NaN has the top fraction bit set). */
static int same_value(double got, double want, int is_float, int quiet_nan)
{
    if (isnan(want)) {
        if (!isnan(got) || !signbit(got) != !signbit(want)) return 0;
        if (!quiet_nan) return 1;
        if (is_float) return (bits_of((float)got) & 0x00400000u) != 0;
        uint64_t u;
        memcpy(&u, &got, 8);
        return (u & 0x0008000000000000ull) != 0;
    }
    return got == want && !signbit(got) == !signbit(want);
}

static void expect_widening(const widening *c, size_t n, double (*fn)(uint16_t), const char *name, int is_float)
{
    int bad = 0;
    for (size_t i = 0; i < n; i++) {
        double got = fn(c[i].bits);
        /* the library's decoders keep a signalling NaN's bits (as hardware does); the oracle's are always quiet */
        int quiet = !is_float || strstr(c[i].what, "signalling") == NULL;
        if (!same_value(got, c[i].want, is_float, quiet)) {
            printf("  %s(0x%04X) = %a, want %a (%s)\n", name, c[i].bits, got, c[i].want, c[i].what);
            bad++;
        }
    }
    assert_int_equal(bad, 0);
}

static const widening bf16_table[] = {
    {0x3F80, 1.0, "1"},
    {0x3F81, 1.0 + 0x1p-7, "1 + ulp"},
    {0xC040, -3.0, "-3"},
    {0x0000, 0.0, "+0"},
    {0x8000, -0.0, "-0"},
    {0x7F80, INFINITY, "+Inf"},
    {0xFF80, -INFINITY, "-Inf"},
    {0x7F7F, 0x1.FEp127, "largest finite"},
    {0x0080, 0x1p-126, "smallest normal"},
    {0x0001, 0x1p-133, "smallest subnormal"},
    {0x007F, 0x7Fp-133, "largest subnormal"},
    {0x807F, -0x7Fp-133, "negative largest subnormal"},
    {0x7FC0, NAN, "quiet NaN"},
    {0xFFC1, -NAN, "negative quiet NaN"},
    {0x7F81, NAN, "signalling NaN"},
};

static const widening f16_table[] = {
    {0x3C00, 1.0, "1"},
    {0x3C01, 1.0 + 0x1p-10, "1 + ulp"},
    {0xC200, -3.0, "-3"},
    {0x0000, 0.0, "+0"},
    {0x8000, -0.0, "-0"},
    {0x7C00, INFINITY, "+Inf"},
    {0xFC00, -INFINITY, "-Inf"},
    {0x7BFF, 65504.0, "largest finite"},
    {0x0400, 0x1p-14, "smallest normal"},
    {0x0001, 0x1p-24, "smallest subnormal"},
    {0x03FF, 1023 * 0x1p-24, "largest subnormal"},
    {0x83FF, -1023 * 0x1p-24, "negative largest subnormal"},
    {0x7E00, NAN, "quiet NaN"},
    {0xFE01, -NAN, "negative quiet NaN"},
    {0x7C01, NAN, "signalling NaN"},
};

static double lib_bf16(uint16_t b) { return stile_bf16_to_float(b); }
static double lib_f16(uint16_t h) { return stile_half_to_float(h); }

static void test_library_decoders_give_the_exact_values_of_known_patterns(void **state)
{
    (void)state;
    expect_widening(bf16_table, sizeof bf16_table / sizeof bf16_table[0], lib_bf16, "stile_bf16_to_float", 1);
    expect_widening(f16_table, sizeof f16_table / sizeof f16_table[0], lib_f16, "stile_half_to_float", 1);
}

static void test_oracle_decoders_give_the_exact_values_of_known_patterns(void **state)
{
    (void)state;
    expect_widening(bf16_table, sizeof bf16_table / sizeof bf16_table[0], stile_oracle_bf16, "stile_oracle_bf16", 0);
    expect_widening(f16_table, sizeof f16_table / sizeof f16_table[0], stile_oracle_f16, "stile_oracle_f16", 0);
}

/* Every one of the 65536 patterns: the two decoders agree, and narrowing the decoded value gives the
 * pattern back (NaNs: a NaN of the same sign). */
static void test_every_16_bit_pattern_decodes_alike_and_round_trips(void **state)
{
    (void)state;
    int bad = 0;
    for (uint32_t b = 0; b <= 0xFFFFu && bad < 8; b++) {
        const uint16_t u = (uint16_t)b;
        const double lib[2] = {stile_bf16_to_float(u), stile_half_to_float(u)};
        const double orc[2] = {stile_oracle_bf16(u), stile_oracle_f16(u)};
        const uint16_t back[2] = {stile_float_to_bf16((float)lib[0]), stile_float_to_half((float)lib[1])};
        for (int k = 0; k < 2; k++) {
            const char *name = k ? "f16" : "bf16";
            const int nan = isnan(orc[k]);
            if (nan ? !isnan(lib[k]) || !signbit(lib[k]) != !signbit(orc[k]) : lib[k] != orc[k] || !signbit(lib[k]) != !signbit(orc[k])) {
                printf("  %s 0x%04X: library %a, oracle %a\n", name, u, lib[k], orc[k]);
                bad++;
            }
            const uint16_t exp_mask = k ? 0x7C00 : 0x7F80, frac = k ? 0x03FF : 0x007F;
            const int back_nan = (back[k] & exp_mask) == exp_mask && (back[k] & frac);
            if (nan ? !back_nan || (back[k] & 0x8000) != (u & 0x8000) : back[k] != u) {
                printf("  %s 0x%04X: decoded and narrowed again gives 0x%04X\n", name, u, back[k]);
                bad++;
            }
        }
    }
    assert_int_equal(bad, 0);
}

int main(void)
{
    const struct CMUnitTest tests[] = {
        cmocka_unit_test(test_float_to_bf16_rounds_to_nearest_even_and_keeps_specials),
        cmocka_unit_test(test_float_to_half_rounds_to_nearest_even_and_keeps_specials),
        cmocka_unit_test(test_library_decoders_give_the_exact_values_of_known_patterns),
        cmocka_unit_test(test_oracle_decoders_give_the_exact_values_of_known_patterns),
        cmocka_unit_test(test_every_16_bit_pattern_decodes_alike_and_round_trips),
    };
    return cmocka_run_group_tests(tests, NULL, NULL);
}
