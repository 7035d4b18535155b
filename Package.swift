// swift-tools-version:6.0
import Foundation
import PackageDescription

/// A plain build (what a package that depends on Latent gets) carries no unsafe flags and runs on any CPU of its
/// architecture. `LATENT_TUNED=1` opts into a build for the building machine, like `-march=native`: `-Ounchecked`,
/// and the element-wise kernels compiled for AVX-512 with 16-lane vectors where its CPU has it (LLVM's
/// `prefer-256-bit` tuning turned off), else for AVX2 and FMA. Use a scratch path of its own (`scripts/run.sh` uses
/// `.build-tuned`): its binaries run only on CPUs like the one that built them.
let tuned = ProcessInfo.processInfo.environment["LATENT_TUNED"] == "1"
let hostCPUFlags: Set<String> = {
    guard tuned, let cpuinfo = try? String(contentsOfFile: "/proc/cpuinfo", encoding: .utf8),
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
let optimized: [SwiftSetting] =
    tuned ? [.unsafeFlags(["-Ounchecked", "-wmo"] + hostTarget, .when(configuration: .release))] : []

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
        .executable(name: "train-vae", targets: ["TrainVAE"]),
        .executable(name: "sample-from-checkpoint", targets: ["SampleFromCheckpoint"]),
    ],
    dependencies: [
        .package(url: "https://github.com/apple/swift-argument-parser", from: "1.5.0"),
        .package(url: "https://github.com/swiftlang/swift-docc-plugin", from: "1.4.0"),
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
        .target(name: "CCPUFeatures"),
        .target(name: "LatentCore", dependencies: ["CLinearAlgebra", "CCPUFeatures"], swiftSettings: optimized),
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

        // MARK: - Examples
        .executableTarget(name: "TrainVAE", dependencies: ["LatentData", "LatentModels", "LatentEvaluation",
                                                           "LatentTraining"], path: "Examples/TrainVAE"),
        .executableTarget(name: "SampleFromCheckpoint",
                          dependencies: ["LatentData", "LatentModels", "LatentEvaluation", "LatentTraining"],
                          path: "Examples/SampleFromCheckpoint"),

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
