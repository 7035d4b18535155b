/// A dense row-major matrix: element (r, c) sits at `values[r * columns + c]`. Row-major is the engine's one layout.
@usableFromInline package struct Matrix<T: BLASScalar>: Equatable, Sendable {
    @usableFromInline package let rows: Int
    @usableFromInline package let columns: Int
    @usableFromInline package var values: [T]

    @usableFromInline package init(rows: Int, columns: Int, values: [T]) {
        precondition(values.count == rows * columns, "Matrix: \(values.count) values for \(rows)×\(columns)")
        self.rows = rows
        self.columns = columns
        self.values = values
    }

    @usableFromInline package init(rows: Int, columns: Int, repeating value: T = 0) {
        self.init(rows: rows, columns: columns, values: Array(repeating: value, count: rows * columns))
    }

    @usableFromInline package subscript(row: Int, column: Int) -> T {
        get { values[row * columns + column] }
        set { values[row * columns + column] = newValue }
    }

    /// The product op(self) · op(other) through `gemm`.
    @usableFromInline package func multiplied(by other: Matrix, _ transSelf: Transpose = .none, _ transOther: Transpose = .none) -> Matrix {
        let m = transSelf == .none ? rows : columns
        let inner = transSelf == .none ? columns : rows
        let n = transOther == .none ? other.columns : other.rows
        let innerOther = transOther == .none ? other.rows : other.columns
        precondition(inner == innerOther, "Matrix product: inner dimensions \(inner) and \(innerOther) differ")
        var out = Matrix(rows: m, columns: n)
        values.withUnsafeBufferPointer { a in
            other.values.withUnsafeBufferPointer { b in
                out.values.withUnsafeMutableBufferPointer { c in
                    T.gemm(transSelf, transOther, rows: m, columns: n, inner: inner, alpha: 1,
                           a: a.baseAddress!, lda: columns, b: b.baseAddress!, ldb: other.columns,
                           beta: 0, c: c.baseAddress!, ldc: n)
                }
            }
        }
        return out
    }

    @usableFromInline package var transposed: Matrix {
        var out = Matrix(rows: columns, columns: rows)
        for r in 0..<rows { for c in 0..<columns { out[c, r] = self[r, c] } }
        return out
    }
}
