internal import CLinearAlgebra

// The only file that calls `LAPACKE_*`.
//
// A row-major lower triangle is, in memory, the column-major upper triangle of the transpose; since Σ is symmetric,
// factoring "U" in column-major order yields the row-major lower factor L directly. LAPACKE's row-major entry
// points would instead transpose through a temporary it allocates on every call.

private func columnMajorTriangle(_ rowMajor: Triangle) -> CChar {
    CChar(UInt8(ascii: rowMajor == .lower ? "U" : "L"))
}

extension Float {
    public static func potrfInfo(triangle: Triangle, order: Int, a: UnsafeMutablePointer<Float>, lda: Int) -> Int {
        Int(LAPACKE_spotrf(LAPACK_COL_MAJOR, columnMajorTriangle(triangle), Int32(order), a, Int32(lda)))
    }
}

extension Double {
    public static func potrfInfo(triangle: Triangle, order: Int, a: UnsafeMutablePointer<Double>, lda: Int) -> Int {
        Int(LAPACKE_dpotrf(LAPACK_COL_MAJOR, columnMajorTriangle(triangle), Int32(order), a, Int32(lda)))
    }
}

/// Cholesky factorization Σ = L Lᵀ in place of the lower triangle of a row-major `order`×`order` matrix.
///
/// The strictly upper triangle is zeroed so the buffer holds exactly L. A matrix that is not positive definite throws.
@inlinable
package func choleskyLower<T: BLASScalar>(_ a: UnsafeMutablePointer<T>, order: Int, lda: Int? = nil) throws {
    let ld = lda ?? order
    let info = T.potrfInfo(triangle: .lower, order: order, a: a, lda: ld)
    if info > 0 { throw LinearAlgebraError.notPositiveDefinite(order: order, leadingMinor: info) }
    if info < 0 { throw LinearAlgebraError.illegalArgument(routine: "potrf", position: -info) }
    for i in 0..<order {
        for j in (i + 1)..<max(i + 1, order) { a[i * ld + j] = 0 }
    }
}
