/// A user-facing error with a location and optional notes, printed the way compilers do:
///
///     vit.keel:12:3: error: dense 'fc1' expects 25,088 input features but gets 32,768 from [N,8,8,512]
///     vit.keel:2:1: note: 25,088 = 7·7·512 comes from a 224×224 input; this input is 256×256
public struct Diagnostic: Error, Hashable, Sendable, CustomStringConvertible {
    public struct Note: Hashable, Sendable {
        public var location: SourceLocation?
        public var message: String
        public init(_ message: String, at location: SourceLocation? = nil) {
            self.message = message
            self.location = location
        }
    }

    public var location: SourceLocation?
    public var message: String
    public var notes: [Note]

    public init(_ message: String, at location: SourceLocation? = nil, notes: [Note] = []) {
        self.message = message
        self.location = location
        self.notes = notes
    }

    /// The first line alone: what scripts and tests match on.
    public var headline: String {
        if let location { return "\(String(describing: location).escapedForTerminal): error: \(message.escapedForTerminal)" }
        return "error: \(message.escapedForTerminal)"
    }

    public var description: String {
        var lines = [headline]
        for note in notes {
            if let location = note.location {
                lines.append("\(String(describing: location).escapedForTerminal): note: \(note.message.escapedForTerminal)")
            } else {
                lines.append("note: \(note.message.escapedForTerminal)")
            }
        }
        return lines.joined(separator: "\n")
    }

    public func adding(_ note: Note) -> Diagnostic {
        var copy = self
        copy.notes.append(note)
        return copy
    }
}

/// Formats counts the way people read them in messages: 25,088.
public func formatCount(_ value: Int) -> String {
    let digits = String(value.magnitude)
    var result = ""
    for (index, character) in digits.enumerated() {
        if index > 0 && (digits.count - index) % 3 == 0 { result.append(",") }
        result.append(character)
    }
    return value < 0 ? "-" + result : result
}
