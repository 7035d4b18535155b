#if canImport(Glibc)
import Glibc
#endif

/// Open MPI, loaded with `dlopen` only when `mpirun` (or `srun`) started this process, so that the default build
/// neither links nor needs it (DESIGN.md § Several processes). Its handles (`MPI_COMM_WORLD`, `MPI_FLOAT`, `MPI_SUM`)
/// are the addresses of the library's globals `ompi_mpi_comm_world`, `ompi_mpi_float`, `ompi_mpi_op_sum`, which
/// `dlsym` gives; `MPI_IN_PLACE` is the address 1. Calls are made from the main thread only.
package final class OpenMPI: Communicator {
    package let rank: Int
    package let size: Int
    /// Ranks on this host, as the launcher says (`OMPI_COMM_WORLD_LOCAL_SIZE`), when it says.
    package let localSize: Int?

    typealias Handle = UnsafeMutableRawPointer
    let communicator: Handle, float: Handle, double: Handle, sum: Handle, max: Handle
    let allreduce: @convention(c) (UnsafeRawPointer?, UnsafeMutableRawPointer?, Int32, Handle, Handle, Handle) -> Int32
    let abortJob: @convention(c) (Handle, Int32) -> Int32
    let finalizeJob: @convention(c) () -> Int32
    var finalized = false

    /// Why Open MPI could not be used, and what to do.
    package enum Failure: Error, CustomStringConvertible {
        case library(String)
        case symbol(String)
        case call(String, Int32)
        package var description: String {
            switch self {
            case let .library(reason):
                "this process was started by mpirun but Open MPI's libmpi.so.40 cannot be loaded (\(reason)); "
                    + "install Open MPI 4 (scripts/setup-mpi.sh) or run latent without mpirun"
            case let .symbol(name):
                "libmpi.so.40 has no \(name): Latent needs Open MPI 3 or 4 (its ABI); run it with Open MPI's mpirun"
            case let .call(name, code): "\(name) failed with MPI error \(code)"
            }
        }
    }

    /// Whether a launcher started this process as one rank of a job (Open MPI's mpirun, or srun with PMIx).
    package static var launched: Bool {
        getenv("OMPI_COMM_WORLD_SIZE") != nil || getenv("PMIX_RANK") != nil
    }

    /// Open MPI initialized when this process is a rank of a job; nil, touching nothing, otherwise.
    package static func fromEnvironment() throws -> OpenMPI? {
        launched ? try OpenMPI() : nil
    }

    init() throws {
        // Global, so that the components Open MPI loads itself resolve its symbols.
        guard let library = dlopen("libmpi.so.40", RTLD_NOW | RTLD_GLOBAL) else {
            throw Failure.library(dlerror().map { String(cString: $0) } ?? "dlopen failed")
        }
        func symbol(_ name: String) throws -> Handle {
            guard let address = dlsym(library, name) else { throw Failure.symbol(name) }
            return address
        }
        func function<F>(_ name: String, as _: F.Type) throws -> F { unsafeBitCast(try symbol(name), to: F.self) }
        communicator = try symbol("ompi_mpi_comm_world")
        float = try symbol("ompi_mpi_float")
        double = try symbol("ompi_mpi_double")
        sum = try symbol("ompi_mpi_op_sum")
        max = try symbol("ompi_mpi_op_max")
        allreduce = try function("MPI_Allreduce", as: type(of: allreduce))
        abortJob = try function("MPI_Abort", as: type(of: abortJob))
        finalizeJob = try function("MPI_Finalize", as: type(of: finalizeJob))
        typealias Query = @convention(c) (Handle, UnsafeMutablePointer<Int32>) -> Int32
        let initialize = try function("MPI_Init", as: (@convention(c) (OpaquePointer?, OpaquePointer?) -> Int32).self)
        let status = initialize(nil, nil)
        guard status == 0 else { throw Failure.call("MPI_Init", status) }
        var value: Int32 = 0
        _ = try function("MPI_Comm_rank", as: Query.self)(communicator, &value)
        rank = Int(value)
        _ = try function("MPI_Comm_size", as: Query.self)(communicator, &value)
        size = Int(value)
        localSize = getenv("OMPI_COMM_WORLD_LOCAL_SIZE").flatMap { Int(String(cString: $0)) }
    }

    /// `MPI_IN_PLACE`.
    var inPlace: UnsafeRawPointer { UnsafeRawPointer(bitPattern: 1)! }

    package func allreduceSum(_ values: UnsafeMutablePointer<Float>, count: Int) {
        _ = allreduce(inPlace, values, Int32(count), float, sum, communicator)
    }

    package func allreduceSum(_ values: UnsafeMutablePointer<Double>, count: Int) {
        _ = allreduce(inPlace, values, Int32(count), double, sum, communicator)
    }

    package func allreduceMax(_ values: UnsafeMutablePointer<Double>, count: Int) {
        _ = allreduce(inPlace, values, Int32(count), double, max, communicator)
    }

    package func abort(status: Int32) -> Never {
        _ = abortJob(communicator, status)
        exit(status)
    }

    /// Leaves the job (collective: every rank calls it once, after its last operation).
    package func finalize() {
        guard !finalized else { return }
        finalized = true
        _ = finalizeJob()
    }
}
