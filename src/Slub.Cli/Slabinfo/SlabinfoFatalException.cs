namespace Slub.Cli.Slabinfo;

/// <summary>The tool's fatal(): <see cref="Exception.Message"/> is written to stderr as is, and the exit code is 1.</summary>
public sealed class SlabinfoFatalException(string message) : Exception(message);
