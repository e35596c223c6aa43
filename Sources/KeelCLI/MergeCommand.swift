import ArgumentParser
import Foundation
import Keel

struct MergeCommand: ParsableCommand {
    static let configuration = CommandConfiguration(
        commandName: "merge",
        abstract: "Join the outputs of `keel extract --shard` into one .npy and .files.txt.",
        discussion: "Every shard 0…n-1 of one run must be given once (any order); each needs its .files.txt and .shard.json.")

    @Argument(help: "The shards' .npy files.")
    var shards: [String]

    @Option(name: .shortAndLong, help: ArgumentHelp("The merged .npy to write.", valueName: "file"))
    var output: String

    @OptionGroup var terminal: QuietOption

    func run() throws {
        try reportingErrors {
            let shape = try ShardMerge.merge(shards, into: output)
            print("\(shards.count) shards: \(Shape(known: shape)) -> \(output)")
        }
    }
}
