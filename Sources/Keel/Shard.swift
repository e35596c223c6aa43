import Foundation
import KeelRuntime

/// One shard of a file list split for a cluster array job. Shards are numbered from 0, as Slurm
/// array task ids (`--array=0-7`) and Kubernetes completion indexes are: `--shard 0/8` … `7/8`.
/// Each shard is a contiguous slice of the sorted list, so its outputs concatenated in index
/// order (`keel merge`) are the unsharded output.
public struct Shard: Equatable, Sendable, CustomStringConvertible {
    public var index: Int
    public var count: Int

    public init(index: Int, count: Int) {
        self.index = index
        self.count = count
    }

    public var description: String { "\(index)/\(count)" }

    public struct Problem: Error, CustomStringConvertible {
        public var description: String
    }

    /// `i/n`, or `auto` for the array job's index and size from the environment: Slurm
    /// (SLURM_ARRAY_TASK_ID − SLURM_ARRAY_TASK_MIN of SLURM_ARRAY_TASK_COUNT) or a Kubernetes
    /// Indexed Job (JOB_COMPLETION_INDEX of `count`, from --shard-count or KEEL_SHARD_COUNT).
    public static func parse(_ text: String, count: Int? = nil, environment: [String: String]) throws -> Shard {
        guard text == "auto" else {
            guard count == nil else { throw Problem(description: "--shard-count goes with --shard auto; --shard \(text) names the count itself") }
            return try parse(text)
        }
        let slurm = environment["SLURM_ARRAY_TASK_ID"]
        let kubernetes = environment["JOB_COMPLETION_INDEX"]
        if slurm != nil && kubernetes != nil {
            throw Problem(description: "--shard auto: both SLURM_ARRAY_TASK_ID and JOB_COMPLETION_INDEX are set; give --shard i/n")
        }
        if let slurm {
            func number(_ name: String) throws -> Int {
                guard let text = environment[name], let value = Int(text) else {
                    throw Problem(description: "--shard auto: SLURM_ARRAY_TASK_ID is set but \(name) is \(environment[name].map { "'\($0)'" } ?? "not set")")
                }
                return value
            }
            guard let id = Int(slurm) else { throw Problem(description: "--shard auto: SLURM_ARRAY_TASK_ID is '\(slurm)', not a number") }
            let minimum = try number("SLURM_ARRAY_TASK_MIN"), maximum = try number("SLURM_ARRAY_TASK_MAX")
            let total = try count ?? number("SLURM_ARRAY_TASK_COUNT")
            guard maximum - minimum + 1 == total else {
                throw Problem(description: "--shard auto: the Slurm array \(minimum)-\(maximum) has \(total) tasks, so its ids are not contiguous; submit it as --array=0-\(total - 1)")
            }
            return try checked(Shard(index: id - minimum, count: total), source: "SLURM_ARRAY_TASK_ID \(id) of \(minimum)-\(maximum)")
        }
        if let kubernetes {
            guard let index = Int(kubernetes) else { throw Problem(description: "--shard auto: JOB_COMPLETION_INDEX is '\(kubernetes)', not a number") }
            guard let total = count ?? environment["KEEL_SHARD_COUNT"].flatMap({ Int($0) }) else {
                throw Problem(description: "--shard auto: JOB_COMPLETION_INDEX is set but not the number of shards; pass --shard-count N (the Job's completions) or set KEEL_SHARD_COUNT")
            }
            return try checked(Shard(index: index, count: total), source: "JOB_COMPLETION_INDEX \(index)")
        }
        throw Problem(description: "--shard auto needs SLURM_ARRAY_TASK_ID (a Slurm array job) or JOB_COMPLETION_INDEX (a Kubernetes Indexed Job)")
    }

    private static func parse(_ text: String) throws -> Shard {
        let parts = text.split(separator: "/", omittingEmptySubsequences: false)
        guard parts.count == 2, let index = Int(parts[0]), let count = Int(parts[1]) else {
            throw Problem(description: "--shard takes i/n (e.g. 0/4) or auto; got '\(text)'")
        }
        return try checked(Shard(index: index, count: count), source: "--shard \(text)")
    }

    private static func checked(_ shard: Shard, source: String) throws -> Shard {
        guard shard.count >= 1 else { throw Problem(description: "\(source): the number of shards must be at least 1") }
        guard (0..<shard.count).contains(shard.index) else {
            throw Problem(description: "\(source): shards are numbered from 0, so the \(shard.count) shards are 0/\(shard.count) to \(shard.count - 1)/\(shard.count)")
        }
        return shard
    }

    /// The positions of this shard's files in a sorted list of `total`.
    public func range(of total: Int) -> Range<Int> {
        (total * index / count)..<(total * (index + 1) / count)
    }
}

/// `<stem>.shard.json`, written beside a shard's output: where its rows sit in the whole, so
/// `keel merge` can check that the shards given are all of one run, with no gap or overlap.
public struct ShardRecord: Codable, Equatable, Sendable {
    public var shard: Int
    public var count: Int
    public var first_file: Int
    public var end_file: Int
    public var total_files: Int
    /// FNV-1a of the whole sorted file list: shards of different lists cannot be merged.
    public var files_hash: String

    public init(shard: Shard, files: [String]) {
        let range = shard.range(of: files.count)
        self.shard = shard.index
        count = shard.count
        first_file = range.lowerBound
        end_file = range.upperBound
        total_files = files.count
        files_hash = String(stableHash(Array(files.joined(separator: "\n").utf8)), radix: 16)
    }

    public static func path(for output: String) -> String { OutputNaming.stem(output) + ".shard.json" }
}

/// The sidecars of an output `.npy`: `features.npy` → `features.files.txt`, `features.shard.json`.
public enum OutputNaming {
    public static func stem(_ output: String) -> String {
        output.hasSuffix(".npy") ? String(output.dropLast(4)) : output
    }

    public static func fileList(for output: String) -> String { stem(output) + ".files.txt" }
}
