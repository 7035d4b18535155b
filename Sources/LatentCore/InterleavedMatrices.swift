/// Eight square matrices of one order stored interleaved: element (i, j) of every matrix side by side, so that one
/// SIMD operation advances all of them (the batched Cholesky factorization and triangular solves, BatchedCholesky.swift).
///
/// The rows are cut into `lanes` chunks of `rowsPerChunk` rows each, `chunkStride` scalars apart, so that a group's
/// storage can lie in pieces of its own matrices' per-row scratch; a contiguous buffer of `capacity(order:)` scalars
/// is the default. Every operation reads and writes the whole order × order square of every lane.
@usableFromInline package struct InterleavedMatrices<T: BLASScalar> {
    /// Matrices per group: the SIMD lanes the kernels run across.
    @usableFromInline package static var lanes: Int { 8 }

    @usableFromInline package let order: Int
    @usableFromInline package let storage: UnsafeMutablePointer<T>
    @usableFromInline package let chunkStride: Int
    @usableFromInline package let rowsPerChunk: Int

    /// Scalars one chunk holds: `rowsPerChunk` rows of `order` elements of `lanes` scalars.
    @inlinable
    package static func chunkCapacity(order: Int) -> Int { (order + lanes - 1) / lanes * order * lanes }

    /// Scalars a contiguous group takes.
    @inlinable
    package static func capacity(order: Int) -> Int { lanes * chunkCapacity(order: order) }

    /// A group over `storage`, its chunk c at `storage + c · chunkStride` (default: contiguous chunks).
    @inlinable
    package init(order: Int, storage: UnsafeMutablePointer<T>, chunkStride: Int? = nil) {
        precondition(order >= 1, "an interleaved matrix has order at least 1")
        let capacity = Self.chunkCapacity(order: order)
        precondition((chunkStride ?? capacity) >= capacity, "chunks of \(capacity) scalars must not overlap")
        self.order = order
        self.storage = storage
        self.chunkStride = chunkStride ?? capacity
        rowsPerChunk = (order + Self.lanes - 1) / Self.lanes
    }

    /// Row i: `order` elements of `lanes` scalars each, contiguous.
    @inlinable @inline(__always)
    package func row(_ i: Int) -> UnsafeMutablePointer<T> {
        let chunk = i / rowsPerChunk
        return storage + chunk * chunkStride + (i - chunk * rowsPerChunk) * order * Self.lanes
    }

    /// Copies `count` ≤ `lanes` row-major matrices (matrix q at `source + q · stride`, leading dimension `ld`) into
    /// the lanes; the lanes past `count` get the identity, which factorizes and solves harmlessly.
    @inlinable
    package func pack(from source: UnsafePointer<T>, stride: Int, ld: Int, count: Int) {
        precondition(count >= 0 && count <= Self.lanes, "a group holds at most \(Self.lanes) matrices")
        let n = order, lanes = Self.lanes
        for i in 0..<n {
            let r = row(i)
            for j in 0..<n {
                let e = r + j * lanes
                for q in 0..<count { e[q] = source[q * stride + i * ld + j] }
                for q in count..<lanes { e[q] = i == j ? 1 : 0 }
            }
        }
    }

    /// Copies the first `count` lanes out to row-major matrices (matrix q at `destination + q · stride`, leading
    /// dimension `ld`).
    @inlinable
    package func unpack(into destination: UnsafeMutablePointer<T>, stride: Int, ld: Int, count: Int) {
        precondition(count >= 0 && count <= Self.lanes, "a group holds at most \(Self.lanes) matrices")
        let n = order, lanes = Self.lanes
        for i in 0..<n {
            let r = row(i)
            for j in 0..<n {
                let e = r + j * lanes
                for q in 0..<count { destination[q * stride + i * ld + j] = e[q] }
            }
        }
    }

    /// Element (i, j) of every lane.
    @inlinable @inline(__always)
    func load(_ p: UnsafeMutablePointer<T>) -> SIMD8<T> {
        UnsafeRawPointer(p).loadUnaligned(as: SIMD8<T>.self)
    }

    @inlinable @inline(__always)
    func store(_ v: SIMD8<T>, _ p: UnsafeMutablePointer<T>) {
        UnsafeMutableRawPointer(p).storeBytes(of: v, as: SIMD8<T>.self)
    }
}
