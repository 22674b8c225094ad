using Slub.Sysfs;

namespace Slub.Cli.TestModules;

/// <summary>
/// A test module that <c>slub test-module NAME</c> hosts (<see cref="TestModuleCommand"/>): it is "insmod"ed
/// by its constructor, adds its debugfs-like files to the live endpoint, takes commands through its control
/// file, and is "rmmod"ed by <see cref="IDisposable.Dispose"/> (which throws <see cref="CacheBusyException"/>
/// when a cache still has objects).
/// </summary>
internal interface IHostedModule : IDisposable
{
    /// <summary>The module's directory on the endpoint (<c>smo</c>, <c>smo_xarray</c>); <c>DIR/unload</c> is the host's.</summary>
    string Directory { get; }

    /// <summary>Heading of the interactive console.</summary>
    string Title { get; }

    /// <summary>The control file, which <see cref="Write"/> serves.</summary>
    string ControlPath { get; }

    /// <summary>The caches the console shows and its <c>shrink</c> shrinks, in that order.</summary>
    IReadOnlyList<KmemCache> Caches { get; }

    /// <summary>The module's commands and what each does, for the console's help.</summary>
    IReadOnlyList<(string Command, string What)> Help { get; }

    /// <summary>Adds the module's files to the endpoint and logs the load messages.</summary>
    void Register(LiveEndpoint endpoint);

    /// <summary>One write to the control file.</summary>
    /// <exception cref="SysfsException">Refused or failed; the message is also in the log.</exception>
    void Write(string text);

    /// <summary>The module's objects, as its <c>objects</c>-like file shows them (the console's <c>objects</c>).</summary>
    string DescribeObjects();

    /// <summary>One line about the module's own state for the console (e.g. how many objects it lists).</summary>
    string Summary();
}
