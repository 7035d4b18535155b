import ArgumentParser
import Foundation
import LatentCore
import LatentModels
import LatentEvaluation
import LatentTraining

@main
struct Latent: ParsableCommand {
    static let configuration = CommandConfiguration(
        commandName: "latent",
        abstract: "Train and evaluate variational autoencoders on CPUs (BLAS and LAPACK underneath).",
        subcommands: [Train.self, Eval.self, Compare.self, Sample.self, Reconstruct.self, Interpolate.self,
                      LatentMap.self, ReportCommand.self, GradVariance.self])

    /// Makes OpenBLAS run the kernel this CPU can (`BLASKernel`), reports a failed allocation in one line, then parses
    /// the command line and runs.
    static func main() {
        BLASKernel.selectForThisCPU()
        AllocationFailure.handler = { bytes in
            printError("error: out of memory: could not allocate " + String(format: "%.1f MB", Double(bytes) / 1e6)
                + " (other processes took memory, or the estimate of `latent train --dry-run` fell short); lower "
                + "--batch, --hidden or --threads")
            Foundation.exit(1)
        }
        main(nil)
    }
}

/// Prints a library error as one line on stderr and exits non-zero, instead of a stack trace.
/// Under mpirun the line names the rank (`rank`, nil for one process).
func reportingErrors<R>(rank: Int? = nil, _ body: () throws -> R) throws -> R {
    do {
        return try body()
    } catch let exit as ExitCode {
        throw exit
    } catch let TrainingError.interrupted(step, directory) where Interruption.requested {
        // Stopped on request, as `train` reports it: the message and the signal's conventional status.
        printError("\(TrainingError.interrupted(step: step, directory: directory))")
        throw ExitCode(Interruption.exitStatus)
    } catch RunDirectoryError.stoppedBeforeStart(let directory) {
        // Stopped on a signal (to this rank or another) before a new run began: rank 0 says nothing was replaced,
        // and every rank leaves with the signal's status, as from a stop at a step.
        if (rank ?? 0) == 0 { printError("\(RunDirectoryError.stoppedBeforeStart(directory: directory))") }
        throw ExitCode(Interruption.requested ? Interruption.exitStatus : 128 + SIGTERM)
    } catch let error as WorkerPoolError {
        // The pool's remedy in the command line's terms.
        let prefix = rank.map { "error (rank \($0)): " } ?? "error: "
        printError(prefix + error.message(fewerThreads: "lower --threads"))
        throw ExitCode(1)
    } catch let ConfigurationError.invalid(setting, requirement, value) {
        // The library names its settings; the command line names the flags that set them.
        FileHandle.standardError.write(Data("error: \(flag(for: setting)) \(requirement) (got \(value))\n".utf8))
        throw ExitCode(1)
    } catch {
        let prefix = rank.map { "error (rank \($0)): " } ?? "error: "
        FileHandle.standardError.write(Data("\(prefix)\(error)\n".utf8))
        throw ExitCode(1)
    }
}

/// The flag that sets a `ModelConfiguration` or `TrainingOptions` setting.
func flag(for setting: String) -> String {
    let flags = ["learningRate": "--lr", "trainLimit": "--train-limit", "testLimit": "--test-limit",
                 "checkpointEvery": "--checkpoint-every", "inputs": "the images' pixel count (--data)"]
    return flags[setting] ?? "--" + setting
}

/// Writes a line to stderr.
func printError(_ text: String, terminator: String = "\n") {
    FileHandle.standardError.write(Data((text + terminator).utf8))
}

/// A command's result on stdout: one JSON object (sorted keys) with `--json`, its Markdown table otherwise.
func printReport<Report: Encodable>(_ report: Report, markdown: String, json: Bool) throws {
    if json {
        let encoder = JSONEncoder()
        encoder.outputFormatting = [.sortedKeys]
        print(String(decoding: try encoder.encode(report), as: UTF8.self))
    } else {
        print(markdown, terminator: "")
    }
}
