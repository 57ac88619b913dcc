//! The `model-exporter` binary: parses flags, hands each command to the
//! library, and reports a failure in one place ([`Failure::report`]) with
//! exit status 1 (clap exits with 2 for bad flags).

mod allocator;

use std::error::Error;
use std::process::ExitCode;

use clap::Parser;
use model_exporter::cli::{Cli, Command, LogFormat, LogLevel, RulesCommand, RunArgs};
use model_exporter::config::ConfigErrors;
use model_exporter::rules::export::{self, ExportFormat, ExportOptions};
use model_exporter::{config, server, shutdown};

/// Any error a library function returned.
type AnyError = Box<dyn Error + Send + Sync>;

/// Why a command failed, and how that is told.
#[derive(Debug, thiserror::Error)]
enum Failure {
    /// Told as it is: the message names its file, or says everything.
    #[error("{0}")]
    Plain(AnyError),
    /// Told after the command's name: `model-exporter report: ...`.
    #[error("model-exporter {command}: {error}")]
    Command {
        /// The subcommand.
        command: &'static str,
        /// What went wrong.
        error: AnyError,
    },
    /// A rules file with errors: every error located, then how many.
    #[error("{errors}\n{file}: {} error(s)", errors.0.len())]
    Rules {
        /// The file, as named in the messages.
        file: String,
        /// Its errors.
        errors: ConfigErrors,
    },
    /// The exporter could not run: told in its log, in `--log.format`.
    #[error("{0}")]
    Exporter(AnyError),
}

impl Failure {
    fn plain(e: impl Into<AnyError>) -> Failure {
        Failure::Plain(e.into())
    }

    fn of<E: Into<AnyError>>(command: &'static str) -> impl FnOnce(E) -> Failure {
        move |error| Failure::Command {
            command,
            error: error.into(),
        }
    }

    /// The one place where the binary reports a failure.
    fn report(&self) {
        match self {
            Failure::Exporter(e) => tracing::error!("{e}"),
            other => eprintln!("{other}"),
        }
    }
}

fn main() -> ExitCode {
    match dispatch(Cli::parse()) {
        Ok(()) => ExitCode::SUCCESS,
        Err(failure) => {
            failure.report();
            ExitCode::FAILURE
        }
    }
}

/// Runs the command the flags name.
fn dispatch(cli: Cli) -> Result<(), Failure> {
    match cli.command {
        Some(Command::Check {
            file,
            latency_buckets,
        }) => check(&file, &latency_buckets),
        Some(Command::Report(args)) => report(args),
        Some(Command::Demo(args)) => demo(args),
        Some(Command::Rules { command }) => rules(command),
        Some(Command::Baseline(args)) => baseline(args),
        Some(Command::Loadgen(args)) => loadgen(args),
        Some(Command::Run(args)) => run(*args),
        None => run(cli.run),
    }
}

fn check(file: &std::path::Path, latency_buckets: &[f64]) -> Result<(), Failure> {
    let c = config::load_file(file).map_err(|errors| Failure::Rules {
        file: file.display().to_string(),
        errors,
    })?;
    for w in &c.warnings {
        let position = if w.line == 0 {
            String::new()
        } else {
            format!(":{}:{}", w.line, w.column)
        };
        eprintln!("{}{position}: warning: {}", w.file, w.message);
    }
    let bounds = if latency_buckets.is_empty() {
        model_exporter::export::metrics::Buckets::default().latency
    } else {
        model_exporter::export::metrics::validate_buckets(latency_buckets)
            .map_err(|e| Failure::plain(format!("--metrics.latency-buckets: {e}")))?;
        latency_buckets.to_vec()
    };
    let bounds = model_exporter::rules::export::buckets::latency_layout(&bounds, &c.groups);
    for u in model_exporter::rules::export::buckets::unreachable_thresholds(&bounds, &c.groups) {
        eprintln!("{}:{}:{}: warning: {u}", file.display(), u.at.0, u.at.1);
    }
    let rules: usize = c.groups.iter().map(|g| g.rules.len()).sum();
    println!(
        "{}: OK ({} groups, {rules} rules, {} models)",
        file.display(),
        c.groups.len(),
        c.models.len()
    );
    Ok(())
}

fn rules(command: RulesCommand) -> Result<(), Failure> {
    match command {
        RulesCommand::Export {
            file,
            builtin,
            format,
            out,
            name,
            namespace,
        } => {
            if format != ExportFormat::PrometheusOperator && (name.is_some() || namespace.is_some())
            {
                return Err(Failure::plain(
                    "--name and --namespace apply to --format prometheus-operator only",
                ));
            }
            let (source, loaded) = match &file {
                Some(path) if !builtin => (path.display().to_string(), config::load_file(path)),
                _ => (
                    model_exporter::DEFAULT_RULES_NAME.to_string(),
                    config::load(
                        model_exporter::DEFAULT_RULES_NAME,
                        model_exporter::DEFAULT_RULES_YAML,
                    ),
                ),
            };
            let cfg = loaded.map_err(|errors| Failure::Rules {
                file: source.clone(),
                errors,
            })?;
            let options = ExportOptions {
                format,
                source,
                name: name.unwrap_or_else(|| export::DEFAULT_OBJECT_NAME.to_string()),
                namespace,
            };
            let text = export::render(&cfg.groups, &options).map_err(Failure::plain)?;
            write_output(out.as_deref(), &text)
        }
    }
}

/// `model-exporter baseline`: builds the baseline, writes it, prints a summary.
fn baseline(args: model_exporter::cli::BaselineArgs) -> Result<(), Failure> {
    use model_exporter::baseline::build::{self, BuildOptions, InputFormat, Progress};
    use std::io::IsTerminal;
    let source = args.input.display().to_string();
    let Some(format) = args.format.or_else(|| InputFormat::from_path(&args.input)) else {
        return Err(Failure::plain(format!(
            "{source}: cannot tell the format from the extension; use --format csv|jsonl"
        )));
    };
    let prediction_column = args.prediction_column.clone();
    let options = BuildOptions {
        bins: args.bins as usize,
        top_k: args.top_k as usize,
        prediction_column: args.prediction_column,
        exclude: args.exclude,
        skip_bad_rows: args.skip_bad_rows,
        ..BuildOptions::new(source.clone(), format)
    };
    let progress = (args.progress || std::io::stderr().is_terminal()).then(|| {
        let show = |p: &Progress| {
            let mib = |b: u64| b as f64 / (1024.0 * 1024.0);
            let of = match p.total_bytes {
                Some(t) if t > 0 => format!(
                    " of {:.1} MiB ({:.0}%)",
                    mib(t),
                    100.0 * p.bytes as f64 / t as f64
                ),
                _ => String::new(),
            };
            eprintln!(
                "pass {}/2: {:.1} MiB{of}, {} rows",
                p.pass,
                mib(p.bytes),
                p.rows
            );
        };
        (
            std::time::Duration::from_secs(5),
            Box::new(show) as build::ProgressFn,
        )
    });
    let (baseline, report) =
        build::build_file(&args.input, options, progress).map_err(Failure::plain)?;
    if !report.unused_excludes.is_empty() {
        // A misspelt --exclude would keep the column as a feature (a label
        // or an id drifting forever); nothing is written.
        let columns: Vec<&str> = baseline
            .features
            .keys()
            .map(String::as_str)
            .chain(prediction_column.as_deref())
            .collect();
        let each: Vec<String> = report
            .unused_excludes
            .iter()
            .map(|name| {
                match model_exporter::rules::suggest::closest(name, columns.iter().copied()) {
                    Some(near) => format!("{name:?} (did you mean {near:?}?)"),
                    None => format!("{name:?}"),
                }
            })
            .collect();
        return Err(Failure::plain(format!(
            "{source}: --exclude names no column: {}; nothing was written",
            each.join(", ")
        )));
    }
    baseline.write(&args.out).map_err(Failure::plain)?;
    let numeric = baseline
        .features
        .values()
        .filter(|f| f.type_name() == "numeric")
        .count();
    let prediction = baseline
        .prediction
        .as_ref()
        .map_or("none", |p| p.type_name());
    println!(
        "{}: {} rows, {} features ({numeric} numeric, {} categorical), prediction: {prediction}",
        args.out.display(),
        baseline.rows,
        baseline.features.len(),
        baseline.features.len() - numeric
    );
    if report.skipped_rows > 0 {
        eprintln!(
            "skipped {} bad rows; the first: {}",
            report.skipped_rows,
            report.first_skipped.as_deref().unwrap_or("")
        );
    }
    if report.other_events > 0 {
        eprintln!(
            "ignored {} events that are not inferences",
            report.other_events
        );
    }
    for (what, names) in [
        (
            "features without any value (left out)",
            &report.empty_features,
        ),
        (
            "categorical features with too many values to count exactly (top values approximate)",
            &report.approximate_categories,
        ),
    ] {
        if !names.is_empty() {
            eprintln!("{what}: {}", names.join(", "));
        }
    }
    Ok(())
}

/// Writes `text` to `out`, or to standard output.
fn write_output(out: Option<&std::path::Path>, text: &str) -> Result<(), Failure> {
    use std::io::Write;
    match out {
        Some(path) => std::fs::write(path, text)
            .map_err(|e| Failure::plain(format!("cannot write {}: {e}", path.display()))),
        None => {
            let mut stdout = std::io::stdout().lock();
            stdout
                .write_all(text.as_bytes())
                .and_then(|()| stdout.flush())
                .map_err(|e| Failure::plain(format!("cannot write to standard output: {e}")))
        }
    }
}

fn demo(args: model_exporter::cli::DemoArgs) -> Result<(), Failure> {
    let _ = tracing_subscriber::fmt()
        .with_max_level(tracing::Level::WARN)
        .with_writer(std::io::stderr)
        .with_ansi(colour_logs())
        .try_init();
    // The demo serves until SIGINT or SIGTERM.
    let (trigger, until) = model_exporter::shutdown::channel();
    std::thread::spawn(move || {
        if let Ok(rt) = tokio::runtime::Builder::new_current_thread()
            .enable_all()
            .build()
        {
            rt.block_on(wait_for_signal());
        }
        trigger.trigger();
    });
    let options = model_exporter::demo::DemoOptions {
        speed: args.speed,
        duration: args.duration,
        web_listen: args.web_listen,
        seed: args.seed,
        verbose: !args.quiet,
        until,
    };
    model_exporter::demo::run(options).map_err(Failure::of("demo"))
}

/// `model-exporter loadgen`: runs the load and prints its figures.
fn loadgen(args: model_exporter::cli::LoadgenArgs) -> Result<(), Failure> {
    let options = model_exporter::loadgen::LoadgenOptions {
        target: args.target,
        rate: args.rate,
        duration: args.duration,
        connections: args.connections,
        models: args.models,
        metrics_url: args.metrics_url,
        client: args.client.options().map_err(Failure::of("loadgen"))?,
        pid: args.pid,
        null_reader: args.null_reader,
        sender_cpu: args.sender_cpu,
        reader_cpu: args.reader_cpu,
        unique_ids: args.unique_ids,
    };
    let report = model_exporter::loadgen::run(&options).map_err(Failure::of("loadgen"))?;
    print!("{}", report.render());
    Ok(())
}

fn report(args: model_exporter::cli::ReportArgs) -> Result<(), Failure> {
    use model_exporter::http_client::HttpClient;
    use model_exporter::report;
    let failed = Failure::of("report");
    let fetched = (|| {
        let options = args.client.options()?;
        let runtime = tokio::runtime::Builder::new_current_thread()
            .enable_all()
            .build()?;
        let base = report::base_url(&args.url);
        runtime.block_on(async {
            let client = HttpClient::new(&options)?;
            let summary = report::fetch_all(&client, base).await?;
            Ok::<_, AnyError>(report::render(&summary, base))
        })
    })();
    print!("{}", fetched.map_err(failed)?);
    Ok(())
}

/// Colour codes only for a terminal, and never with `NO_COLOR` set
/// (<https://no-color.org>): a log collected from a pipe or a file stays
/// plain text.
fn colour_logs() -> bool {
    use std::io::IsTerminal;
    std::io::stderr().is_terminal() && std::env::var_os("NO_COLOR").is_none_or(|v| v.is_empty())
}

fn init_logging(args: &RunArgs) {
    let level = match args.log.level {
        LogLevel::Debug => tracing::Level::DEBUG,
        LogLevel::Info => tracing::Level::INFO,
        LogLevel::Warn => tracing::Level::WARN,
        LogLevel::Error => tracing::Level::ERROR,
    };
    let builder = tracing_subscriber::fmt()
        .with_max_level(level)
        .with_writer(std::io::stderr)
        .with_ansi(colour_logs());
    match args.log.format {
        LogFormat::Json => builder.json().init(),
        LogFormat::Text => builder.init(),
    }
}

/// Runs the exporter until SIGTERM or SIGINT.
fn run(args: RunArgs) -> Result<(), Failure> {
    init_logging(&args);
    let runtime = tokio::runtime::Builder::new_multi_thread()
        .enable_all()
        .build()
        .map_err(|e| Failure::Exporter(format!("cannot start the runtime: {e}").into()))?;
    runtime.block_on(async {
        let (trigger, shutdown) = shutdown::channel();
        tokio::spawn(async move {
            wait_for_signal().await;
            trigger.trigger();
        });
        server::run(args, shutdown)
            .await
            .map_err(|e| Failure::Exporter(e.into()))
    })
}

/// Completes on SIGTERM or SIGINT.
async fn wait_for_signal() {
    use tokio::signal::unix::{SignalKind, signal};
    let mut term = signal(SignalKind::terminate()).expect("installing the SIGTERM handler");
    tokio::select! {
        _ = term.recv() => tracing::info!("received SIGTERM"),
        _ = tokio::signal::ctrl_c() => tracing::info!("received SIGINT"),
    }
}
