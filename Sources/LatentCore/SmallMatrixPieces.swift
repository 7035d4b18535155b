/// Column pieces that put a single-precision GEMM on OpenBLAS's small-matrix kernels.
///
/// OpenBLAS 0.3.21's AVX-512 kernels (SkylakeX, Cooperlake, SapphireRapids) multiply small matrices without packing
/// them, but take that path only when `sgemm_small_kernel_permit` allows: M·N·K ≤ 100³ and, for its TN kernel,
/// M·N ≤ 1200 with K ≥ 32 (column-major names; a row-major call with `rows` × `columns` is column-major
/// `columns` × `rows`). The training step's GEMMs at batch 32 lie just above those bounds and spent a third of their
/// time packing, so `Float.gemm` issues them as one GEMM per block of columns of C, each within the bounds
/// (docs/PERFORMANCE.md § Small-matrix pieces; latent-bench's pieces table). A piece is the same product on its
/// columns: only the kernels' rounding differs, and the pieces depend on the shapes alone.
@usableFromInline package enum SmallMatrixPieces {
    /// The largest product M·N·K OpenBLAS sends to a small-matrix kernel.
    @usableFromInline package static let productLimit = 1_000_000
    /// The largest M·N (C's size) its TN kernel takes.
    @usableFromInline package static let transposedOutputLimit = 1200

    /// Whether the running kernel has small-matrix kernels and OpenBLAS runs one thread per call (a small-matrix
    /// call is never threaded, so pieces would take OpenBLAS's own threads away).
    @usableFromInline package static var applies: Bool { isEnabled && hasSmallKernels && BLASThreads.current == 1 }

    /// Off, every GEMM is one call (latent-bench's `pieces` table times both ways); set it between steps only.
    @usableFromInline nonisolated(unsafe) package static var isEnabled = true

    static let hasSmallKernels = ["SkylakeX", "Cooperlake", "SapphireRapids"].contains(BLASKernel.current)

    /// The width of the column pieces for a row-major C (rows × columns) = op(A) op(B) with `inner` terms, or
    /// `columns` for one call. Only where pieces were measured faster than one packed call:
    /// - y = x Wᵀ (column-major TN) on at most 37 rows, so that 32 columns fit M·N ≤ 1200;
    /// - dW = dyᵀ x (NT) over at most 128 rows, where at least 64 columns fit in a piece;
    /// - dx = dy W (NN) on 24–40 rows, in pieces of at most 64 columns, and only for a width that leaves 0 or 9–15
    ///   columns over a multiple of 16: the NN kernel mallocs a buffer on every call whose width leaves 1–8 (with
    ///   K ≥ 32), and every piece but the last is a multiple of 16.
    @inlinable
    package static func width(_ transA: Transpose, _ transB: Transpose, rows: Int, columns: Int, inner: Int) -> Int {
        guard rows > 0, inner > 0, columns > 16, rows * columns * inner > productLimit else { return columns }
        let fitting = productLimit / (rows * inner)
        let width: Int
        switch (transA, transB) {
        case (.none, .transpose):
            guard rows <= 37, inner >= 32 else { return columns }
            width = min(fitting, transposedOutputLimit / rows)
        case (.transpose, .none):
            guard inner <= 128 else { return columns }
            width = fitting
            guard width >= 64 else { return columns }
        case (.none, .none):
            let remainder = columns % 16
            guard (24...40).contains(rows), remainder == 0 || remainder > 8 else { return columns }
            width = min(fitting, 64)
        case (.transpose, .transpose):
            return columns
        }
        let multiple = width / 16 * 16
        guard multiple >= 16 else { return columns }
        // As few pieces as fit, of even widths (in multiples of 16, which keep the NN kernel's remainder).
        let pieces = (columns + multiple - 1) / multiple
        return ((columns + pieces - 1) / pieces + 15) / 16 * 16
    }

    /// How `Float.gemm` issues an NN GEMM (dx = dy W) that OpenBLAS's small-matrix NN kernel would take with a width
    /// leaving 1–8 columns over a multiple of 16 and K ≥ 32: for those columns that kernel mallocs a buffer on every
    /// call (e.g. dz = dy W for a latent dimension of 20 or 50). Nil when the call allocates nothing as it is.
    @inlinable
    package static func mallocFreeNN(rows: Int, columns: Int, inner: Int, betaIsZero: Bool) -> MallocFreeNN? {
        let remainder = columns % 16
        guard (1...8).contains(remainder), inner >= 32, rows * columns * inner <= productLimit else { return nil }
        let aligned = columns - remainder
        return betaIsZero && aligned > 0 ? .overlapping(aligned: aligned) : .innerBlocks(aligned: aligned)
    }
}

/// The calls of an NN GEMM that keep OpenBLAS's small-matrix NN kernel from allocating (`mallocFreeNN`).
@usableFromInline package enum MallocFreeNN: Equatable, Sendable {
    /// C's first `aligned` columns, then its last 16 again (β = 0, so computing them twice changes nothing): two
    /// widths that are multiples of 16.
    case overlapping(aligned: Int)
    /// C's first `aligned` columns in one call (none when 0), then the rest in blocks of `innerBlock` inner terms,
    /// summed with β = 1 after the first: with K < 32 the kernel copies nothing.
    case innerBlocks(aligned: Int)

    /// The inner terms of one block of `innerBlocks`.
    @usableFromInline package static let innerBlock = 31
}
