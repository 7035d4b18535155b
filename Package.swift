// swift-tools-version:6.0
import Foundation
import PackageDescription

/// Release builds are tuned for the building machine, like `-march=native`: the element-wise kernels are compiled for
/// AVX-512 with 16-lane vectors where its CPU has it (LLVM's `prefer-256-bit` tuning turned off; the GEMM kernel runs
/// 512-bit instructions anyway), else for AVX2 and FMA (8 lanes and fused multiply-adds instead of SSE2's 4).
let hostCPUFlags: Set<String> = {
    guard let cpuinfo = try? String(contentsOfFile: "/proc/cpuinfo", encoding: .utf8),
          let flags = cpuinfo.split(separator: "\n").first(where: { $0.hasPrefix("flags") }) else { return [] }
    return Set(flags.split(separator: " ").map(String.init))
}()
/// A target feature for Swift's code generation, which takes them from its Clang importer.
func targetFeature(_ feature: String) -> [String] {
    ["-Xcc", "-Xclang", "-Xcc", "-target-feature", "-Xcc", "-Xclang", "-Xcc", feature]
}
let hostTarget: [String] =
    hostCPUFlags.isSuperset(of: ["avx512f", "avx512cd", "avx512bw", "avx512dq", "avx512vl", "fma"])
        ? ["-target-cpu", "skylake-avx512"] + targetFeature("-prefer-256-bit")
        : hostCPUFlags.isSuperset(of: ["avx2", "fma"]) ? ["-target-cpu", "haswell"] : []
let releaseFlags = ["-Ounchecked", "-wmo"] + hostTarget
let optimized: [SwiftSetting] = [.unsafeFlags(releaseFlags, .when(configuration: .release))]

let package = Package(
    name: "Latent",
    platforms: [.macOS(.v14)],
    products: [
        // MARK: - Public API
        .library(name: "LatentCore", targets: ["LatentCore"]),
        .library(name: "LatentData", targets: ["LatentData"]),
        .library(name: "LatentModels", targets: ["LatentModels"]),
        .library(name: "LatentEvaluation", targets: ["LatentEvaluation"]),
        .library(name: "LatentTraining", targets: ["LatentTraining"]),
        .executable(name: "latent", targets: ["LatentCLI"]),
        .executable(name: "latent-bench", targets: ["LatentBench"]),
    ],
    dependencies: [
        .package(url: "https://github.com/apple/swift-argument-parser", from: "1.5.0"),
    ],
    targets: [
        // MARK: - System libraries
        .systemLibrary(
            name: "CLinearAlgebra",
            pkgConfig: "openblas",
            providers: [.apt(["libopenblas-dev", "liblapacke-dev"])]
        ),
        .systemLibrary(
            name: "CZlib",
            pkgConfig: "zlib",
            providers: [.apt(["zlib1g-dev"])]
        ),
        .systemLibrary(
            name: "CPNG",
            pkgConfig: "libpng",
            providers: [.apt(["libpng-dev"])]
        ),

        // MARK: - Implementation
        .target(name: "LatentCore", dependencies: ["CLinearAlgebra"], swiftSettings: optimized),
        .target(name: "LatentData", dependencies: ["LatentCore", "CZlib", "CPNG"], swiftSettings: optimized),
        .target(name: "LatentModels", dependencies: ["LatentCore", "LatentData"], swiftSettings: optimized),
        .target(name: "LatentEvaluation", dependencies: ["LatentCore", "LatentData", "LatentModels"],
                swiftSettings: optimized),
        .target(name: "LatentTraining", dependencies: ["LatentCore", "LatentData", "LatentModels", "LatentEvaluation"],
                swiftSettings: optimized),
        .executableTarget(
            name: "LatentCLI",
            dependencies: [
                "LatentCore", "LatentData", "LatentModels", "LatentEvaluation", "LatentTraining",
                .product(name: "ArgumentParser", package: "swift-argument-parser"),
            ],
            swiftSettings: optimized
        ),
        .target(name: "CMallocCounter", path: "Benchmarks/CMallocCounter"),
        .executableTarget(
            name: "LatentBench",
            dependencies: ["LatentCore", "LatentData", "LatentModels", "LatentEvaluation", "LatentTraining",
                           "CMallocCounter"],
            path: "Benchmarks/LatentBench",
            swiftSettings: optimized
        ),

        // MARK: - Tests
        .target(name: "TestSupport", dependencies: ["LatentCore"]),
        // libFuzzer targets for the IDX reader and the checkpoint loader (scripts/fuzz.sh builds them with
        // -sanitize=fuzzer -DFUZZING); built normally it replays inputs and writes the seed corpus.
        .executableTarget(
            name: "LatentFuzz",
            dependencies: ["LatentCore", "LatentData", "LatentModels", "LatentTraining"],
            path: "Tests/Fuzz/LatentFuzz"
        ),
        .testTarget(name: "LatentCoreTests", dependencies: ["LatentCore", "TestSupport"]),
        .testTarget(name: "LatentDataTests", dependencies: ["LatentData", "TestSupport"]),
        .testTarget(name: "LatentModelsTests",
                    dependencies: ["LatentModels", "LatentEvaluation", "LatentTraining", "LatentData", "TestSupport"],
                    exclude: ["Fixtures"]),
        .testTarget(name: "LatentCLITests", dependencies: ["LatentCLI", "LatentCore"]),
    ]
)
