// Configure-time probe (backends/vulkan/meson.build): does this glslang know GL_NV_cooperative_matrix2
// (glslang >= 15.1): workgroup-scope matrices, a row reduction and a per-element operation?
#version 450
#extension GL_KHR_cooperative_matrix : require
#extension GL_NV_cooperative_matrix2 : require
#extension GL_EXT_shader_explicit_arithmetic_types_float16 : require
#extension GL_KHR_memory_scope_semantics : require
layout(local_size_x = 256) in;
layout(std430, binding = 0) buffer A { float16_t a[]; };
layout(std430, binding = 1) buffer C { float c[]; };
float max_op(const in float x, const in float y) { return max(x, y); }
float exp2_el(const in uint r, const in uint col, const in float x) { return exp2(x); }
void main()
{
    coopmat<float16_t, gl_ScopeWorkgroup, 128, 64, gl_MatrixUseA> x;
    coopmat<float16_t, gl_ScopeWorkgroup, 64, 64, gl_MatrixUseB> y;
    coopMatLoad(x, a, 0, 64, gl_CooperativeMatrixLayoutRowMajor);
    coopMatLoad(y, a, 8192, 64, gl_CooperativeMatrixLayoutColumnMajor);
    coopmat<float, gl_ScopeWorkgroup, 128, 64, gl_MatrixUseAccumulator> z =
        coopMatMulAdd(x, y, coopmat<float, gl_ScopeWorkgroup, 128, 64, gl_MatrixUseAccumulator>(0.0));
    coopmat<float, gl_ScopeWorkgroup, 128, 32, gl_MatrixUseAccumulator> r;
    coopMatReduceNV(r, z, gl_CooperativeMatrixReduceRowNV, max_op);
    coopMatPerElementNV(r, r, exp2_el);
    coopMatStore(r, c, 0, 32, gl_CooperativeMatrixLayoutRowMajor);
}
