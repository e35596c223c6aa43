/// The release of Keel this library and the `keel` command were built from (`keel --version`).
public enum KeelVersion {
    public static let current = "0.5.0"
}
