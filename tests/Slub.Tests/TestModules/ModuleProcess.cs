using System.Diagnostics;
using System.Net.Sockets;
using System.Text;
using Slub.Sysfs;

namespace Slub.Tests.TestModules;

/// <summary>The answer to a write on the live endpoint: <c>OK</c>, or <c>ERR CODE message</c>.</summary>
internal sealed record WriteReply(bool Ok, string Code, string Message)
{
    public override string ToString() => Ok ? "OK" : $"ERR {Code} {Message}";
}

/// <summary>An <c>ERR</c> answer to a read.</summary>
internal sealed class EndpointErrorException(string code, string message) : IOException($"{code} {message}")
{
    public string Code { get; } = code;
}

/// <summary>
/// A client of a process's live endpoint (the Unix socket protocol of <see cref="LiveEndpoint"/>): the test
/// suite's stand-in for reading /sys/kernel/slab and writing debugfs files from a shell.
/// </summary>
internal sealed class LiveClient : IDisposable
{
    private readonly Socket _socket;
    private readonly NetworkStream _stream;

    public LiveClient(string socketPath)
    {
        _socket = new Socket(AddressFamily.Unix, SocketType.Stream, ProtocolType.Unspecified);
        _socket.Connect(new UnixDomainSocketEndPoint(socketPath));
        _stream = new NetworkStream(_socket, ownsSocket: false);
    }

    /// <summary>READ path → the file's text; throws <see cref="EndpointErrorException"/> on ERR.</summary>
    public string Read(string path)
    {
        _stream.Write(Encoding.UTF8.GetBytes($"READ {path}\n"));
        string head = ReadHead();
        if (head.StartsWith("ERR ", StringComparison.Ordinal))
        {
            var (code, msg) = SplitErr(head);
            throw new EndpointErrorException(code, msg);
        }
        return ReadBody(head);
    }

    /// <summary>WRITE path n + payload.</summary>
    public WriteReply Write(string path, string payload)
    {
        byte[] bytes = Encoding.UTF8.GetBytes(payload);
        _stream.Write(Encoding.UTF8.GetBytes($"WRITE {path} {bytes.Length}\n"));
        _stream.Write(bytes);
        string head = ReadHead();
        if (head.StartsWith("ERR ", StringComparison.Ordinal))
        {
            var (code, msg) = SplitErr(head);
            return new WriteReply(false, code, msg);
        }
        ReadBody(head);
        return new WriteReply(true, "", "");
    }

    private string ReadHead() => LiveEndpoint.ReadLine(_stream) ?? throw new IOException("the module closed the connection");

    private string ReadBody(string head)
    {
        if (!head.StartsWith("OK ", StringComparison.Ordinal)) throw new IOException($"unexpected answer: {head}");
        var body = new byte[int.Parse(head[3..])];
        _stream.ReadExactly(body);
        return Encoding.UTF8.GetString(body);
    }

    private static (string Code, string Message) SplitErr(string head)
    {
        string rest = head[4..];
        int sp = rest.IndexOf(' ');
        return sp < 0 ? (rest, "") : (rest[..sp], rest[(sp + 1)..]);
    }

    public void Dispose()
    {
        _stream.Dispose();
        _socket.Dispose();
    }
}

/// <summary>
/// One run of <c>slub test-module smo</c> (or another module, <see cref="StartModule"/>) in its own process ("insmod"), driven only through its live
/// endpoint, and stopped through <c>smo/unload</c> ("rmmod"). Runs the Slub.Cli build next to the test
/// assembly (tests/Slub.Tests references src/Slub.Cli, so its dll is copied there).
/// </summary>
internal sealed class ModuleProcess : IDisposable
{
    // Hang guards only: nothing is asserted about how long anything takes.
    private static readonly TimeSpan StartGuard = TimeSpan.FromSeconds(120), ExitGuard = TimeSpan.FromSeconds(60);
    private static int s_counter;

    private readonly Process _process;
    private readonly StringBuilder _stderr = new();
    private readonly StringBuilder _stdout = new();
    private LiveClient? _client;

    public string SocketPath { get; }

    /// <summary>What the process wrote to stderr so far (the module's log copy and exit messages): for failure messages.</summary>
    public string Stderr
    {
        get { lock (_stderr) return _stderr.ToString(); }
    }

    /// <summary>What the process wrote to stdout after the socket path line.</summary>
    public string Stdout
    {
        get { lock (_stdout) return _stdout.ToString(); }
    }

    public static string CliDll => Path.Combine(AppContext.BaseDirectory, "Slub.Cli.dll");

    private ModuleProcess(string module, string[] extraArgs)
    {
        SocketPath = Path.Combine(Path.GetTempPath(), $"smo-t{Environment.ProcessId}-{Interlocked.Increment(ref s_counter)}.sock");
        var psi = new ProcessStartInfo("dotnet")
        {
            RedirectStandardInput = true,
            RedirectStandardOutput = true,
            RedirectStandardError = true,
            UseShellExecute = false,
        };
        psi.ArgumentList.Add(CliDll);
        psi.ArgumentList.Add("test-module");
        psi.ArgumentList.Add(module);
        Directory = module == "xarray" ? "smo_xarray" : module;
        psi.ArgumentList.Add("--socket");
        psi.ArgumentList.Add(SocketPath);
        foreach (string a in extraArgs) psi.ArgumentList.Add(a);
        psi.Environment.Remove("SLUB_DEBUG");
        _process = Process.Start(psi) ?? throw new InvalidOperationException("could not start dotnet");
        var first = new TaskCompletionSource<string?>(TaskCreationOptions.RunContinuationsAsynchronously);
        _process.ErrorDataReceived += (_, e) => { if (e.Data is not null) lock (_stderr) _stderr.AppendLine(e.Data); };
        _process.OutputDataReceived += (_, e) =>
        {
            if (e.Data is null) { first.TrySetResult(null); return; }
            if (!first.TrySetResult(e.Data)) lock (_stdout) _stdout.AppendLine(e.Data);
        };
        _process.BeginErrorReadLine();
        _process.BeginOutputReadLine();
        if (!first.Task.Wait(StartGuard) || first.Task.Result is null)
        {
            Kill();
            throw new InvalidOperationException($"the module did not report its socket; stderr:\n{Stderr}");
        }
        if (first.Task.Result != SocketPath)
        {
            Kill();
            throw new InvalidOperationException($"expected the socket path {SocketPath} on the first stdout line, got '{first.Task.Result}'");
        }
    }

    /// <summary>Starts <c>slub test-module smo</c> with <paramref name="extraArgs"/> and waits until it serves its socket.</summary>
    public static ModuleProcess Start(params string[] extraArgs) => new("smo", extraArgs);

    /// <summary>Starts <c>slub test-module MODULE</c> with <paramref name="extraArgs"/> and waits until it serves its socket.</summary>
    public static ModuleProcess StartModule(string module, params string[] extraArgs) => new(module, extraArgs);

    /// <summary>The module's directory on the endpoint (<c>smo</c>, <c>smo_xarray</c>).</summary>
    public string Directory { get; }

    public LiveClient Client => _client ??= new LiveClient(SocketPath);

    public bool HasExited => _process.HasExited;

    public StreamWriter StandardInput => _process.StandardInput;

    /// <summary><c>echo CMD &gt; /sys/kernel/debug/DIR/callfn</c>: the command plus echo's newline.</summary>
    public WriteReply Callfn(string command) => Client.Write($"{Directory}/callfn", command + "\n");

    /// <summary>The first number of <c>smo_test/ATTR</c> (the Python suite's <c>get_sysfs_value</c>: "20 N0=20" gives 20).</summary>
    public long SysfsValue(string attr) => SysfsValue("smo_test", attr);

    /// <summary>The first number of <c>CACHE/ATTR</c>.</summary>
    public long SysfsValue(string cache, string attr)
    {
        string line = Client.Read($"{cache}/{attr}");
        return long.Parse(line.Split(' ')[0].Trim());
    }

    /// <summary>The module's log lines (the dmesg stand-in).</summary>
    public string[] LogLines() => Client.Read($"{Directory}/log").Split('\n', StringSplitOptions.RemoveEmptyEntries);

    /// <summary>"rmmod": writes 1 to <c>DIR/unload</c> and waits for the process to exit; returns its exit code.</summary>
    public int Unload()
    {
        try { Client.Write($"{Directory}/unload", "1"); }
        catch (IOException) { }   // the reply may be cut off by the exit
        return WaitForExit();
    }

    /// <summary>Waits (bounded) for the process to exit on its own; returns its exit code.</summary>
    public int WaitForExit()
    {
        if (!_process.WaitForExit(ExitGuard))
        {
            Kill();
            throw new InvalidOperationException($"the module did not exit; stderr:\n{Stderr}");
        }
        _process.WaitForExit();   // drain the redirected streams
        _client?.Dispose();
        _client = null;
        return _process.ExitCode;
    }

    public void SendSignal(int signal)
    {
        if (sys_kill(_process.Id, signal) != 0) throw new InvalidOperationException($"kill({_process.Id}, {signal}) failed");
    }

    [System.Runtime.InteropServices.DllImport("libc", EntryPoint = "kill")]
    private static extern int sys_kill(int pid, int sig);

    private void Kill()
    {
        try { if (!_process.HasExited) _process.Kill(entireProcessTree: true); } catch (InvalidOperationException) { }
    }

    public void Dispose()
    {
        _client?.Dispose();
        if (!_process.HasExited)
        {
            try { _process.StandardInput.Close(); } catch (IOException) { }
            if (!_process.WaitForExit(ExitGuard)) Kill();
        }
        _process.Dispose();
        if (File.Exists(SocketPath)) File.Delete(SocketPath);
    }
}
