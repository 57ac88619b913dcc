//! The `model-exporter` binary: parses flags, sets up logging and signals,
//! and hands over to [`model_exporter::server::run`].

mod allocator;

use std::process::ExitCode;

use clap::Parser;
use model_exporter::cli::{Cli, Command, LogFormat, LogLevel, RulesCommand, RunArgs};
use model_exporter::rules::export::{self, ExportFormat, ExportOptions};
use model_exporter::{config, server, shutdown};

fn main() -> ExitCode {
    let cli = Cli::parse();
    match cli.command {
        Some(Command::Check { file }) => check(&file),
        Some(Command::Report { url }) => report(&url),
        Some(Command::Demo(args)) => demo(args),
        Some(Command::Rules { command }) => rules(command),
        Some(Command::Baseline(args)) => baseline(args),
        Some(Command::Loadgen(args)) => loadgen(args),
        Some(Command::Run(args)) => run(*args),
        None => run(cli.run),
    }
}

fn check(file: &std::path::Path) -> ExitCode {
    match config::load_file(file) {
        Ok(c) => {
            let rules: usize = c.groups.iter().map(|g| g.rules.len()).sum();
            println!(
                "{}: OK ({} groups, {rules} rules, {} models)",
                file.display(),
                c.groups.len(),
                c.models.len()
            );
            ExitCode::SUCCESS
        }
        Err(errors) => {
            eprintln!("{errors}");
            eprintln!("{}: {} error(s)", file.display(), errors.0.len());
            ExitCode::FAILURE
        }
    }
}

fn rules(command: RulesCommand) -> ExitCode {
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
                eprintln!("--name and --namespace apply to --format prometheus-operator only");
                return ExitCode::FAILURE;
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
            let cfg = match loaded {
                Ok(c) => c,
                Err(errors) => {
                    eprintln!("{errors}");
                    eprintln!("{source}: {} error(s)", errors.0.len());
                    return ExitCode::FAILURE;
                }
            };
            let options = ExportOptions {
                format,
                source,
                name: name.unwrap_or_else(|| export::DEFAULT_OBJECT_NAME.to_string()),
                namespace,
            };
            let text = match export::render(&cfg, &options) {
                Ok(t) => t,
                Err(e) => {
                    eprintln!("{e}");
                    return ExitCode::FAILURE;
                }
            };
            let written = write_output(out.as_deref(), &text);
            match written {
                Ok(()) => ExitCode::SUCCESS,
                Err(e) => {
                    eprintln!("{e}");
                    ExitCode::FAILURE
                }
            }
        }
    }
}

/// `model-exporter baseline`: builds the baseline, writes it, prints a summary.
fn baseline(args: model_exporter::cli::BaselineArgs) -> ExitCode {
    use model_exporter::baseline::build::{self, BuildOptions, InputFormat, Progress};
    use std::io::IsTerminal;
    let source = args.input.display().to_string();
    let Some(format) = args.format.or_else(|| InputFormat::from_path(&args.input)) else {
        eprintln!("{source}: cannot tell the format from the extension; use --format csv|jsonl");
        return ExitCode::FAILURE;
    };
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
    let (baseline, report) = match build::build_file(&args.input, options, progress) {
        Ok(r) => r,
        Err(e) => {
            eprintln!("{e}");
            return ExitCode::FAILURE;
        }
    };
    if let Err(e) = baseline.write(&args.out) {
        eprintln!("{e}");
        return ExitCode::FAILURE;
    }
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
        ("--exclude names matching nothing", &report.unused_excludes),
        (
            "categorical features with too many values to count exactly (top values approximate)",
            &report.approximate_categories,
        ),
    ] {
        if !names.is_empty() {
            eprintln!("{what}: {}", names.join(", "));
        }
    }
    ExitCode::SUCCESS
}

/// Writes `text` to `out`, or to standard output.
fn write_output(out: Option<&std::path::Path>, text: &str) -> Result<(), String> {
    use std::io::Write;
    match out {
        Some(path) => {
            std::fs::write(path, text).map_err(|e| format!("cannot write {}: {e}", path.display()))
        }
        None => {
            let mut stdout = std::io::stdout().lock();
            stdout
                .write_all(text.as_bytes())
                .and_then(|()| stdout.flush())
                .map_err(|e| format!("cannot write to standard output: {e}"))
        }
    }
}

fn demo(args: model_exporter::cli::DemoArgs) -> ExitCode {
    let _ = tracing_subscriber::fmt()
        .with_max_level(tracing::Level::WARN)
        .with_writer(std::io::stderr)
        .try_init();
    let options = model_exporter::demo::DemoOptions {
        speed: args.speed,
        duration: args.duration,
        web_listen: args.web_listen,
        seed: args.seed,
        verbose: !args.quiet,
    };
    match model_exporter::demo::run(options) {
        Ok(()) => ExitCode::SUCCESS,
        Err(e) => {
            eprintln!("model-exporter demo: {e}");
            ExitCode::FAILURE
        }
    }
}

/// `model-exporter loadgen`: runs the load and prints its figures.
fn loadgen(args: model_exporter::cli::LoadgenArgs) -> ExitCode {
    let options = model_exporter::loadgen::LoadgenOptions {
        target: args.target,
        rate: args.rate,
        duration: args.duration,
        connections: args.connections,
        models: args.models,
        metrics_url: args.metrics_url,
        pid: args.pid,
        null_reader: args.null_reader,
        sender_cpu: args.sender_cpu,
        reader_cpu: args.reader_cpu,
        unique_ids: args.unique_ids,
    };
    match model_exporter::loadgen::run(&options) {
        Ok(report) => {
            print!("{}", report.render());
            ExitCode::SUCCESS
        }
        Err(e) => {
            eprintln!("model-exporter loadgen: {e}");
            ExitCode::FAILURE
        }
    }
}

fn report(url: &str) -> ExitCode {
    match model_exporter::report::fetch(url) {
        Ok(summary) => {
            print!("{}", model_exporter::report::render(&summary, url));
            ExitCode::SUCCESS
        }
        Err(e) => {
            eprintln!("model-exporter report: {e}");
            ExitCode::FAILURE
        }
    }
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
        .with_writer(std::io::stderr);
    match args.log.format {
        LogFormat::Json => builder.json().init(),
        LogFormat::Text => builder.init(),
    }
}

fn run(args: RunArgs) -> ExitCode {
    init_logging(&args);
    let runtime = match tokio::runtime::Builder::new_multi_thread()
        .enable_all()
        .build()
    {
        Ok(r) => r,
        Err(e) => {
            tracing::error!(error = %e, "cannot start the runtime");
            return ExitCode::FAILURE;
        }
    };
    let result = runtime.block_on(async {
        let (trigger, shutdown) = shutdown::channel();
        tokio::spawn(async move {
            wait_for_signal().await;
            trigger.trigger();
        });
        server::run(args, shutdown).await
    });
    match result {
        Ok(()) => ExitCode::SUCCESS,
        Err(e) => {
            tracing::error!("{e}");
            ExitCode::FAILURE
        }
    }
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
