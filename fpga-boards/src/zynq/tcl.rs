//! Vivado batch TCL generation: `build.tcl` (full block design to bitstream + .hwh) and
//! `synth_ooc.tcl` (the accelerator alone, out of context, for resource calibration).
//!
//! The scripts stick to Tcl 8.5 (what Vivado embeds): no `try`, `lmap`, `string cat`, …
//! Everything is wired explicitly instead of through `apply_bd_automation` for AXI masters:
//! automation invents cell names (`ps7_0_axi_periph`, `rst_ps7_0_100M`) that differ between
//! Vivado releases, whereas explicit wiring gives names the PYNQ driver can rely on and that the
//! stub test can check pin by pin. The PS preset is still applied by automation.

use super::{ZynqDesign, fill};
use crate::board::PsType;
use crate::error::{BoardError, Result};

/// Block-design cell names of a one-engine design (engine `n` of a larger one has `accel_<n>`,
/// `axi_dma_<n>`, `axi_datamover_<n>`; see [`ZynqDesign::accel_cell`]); the PYNQ driver looks
/// the accelerator and DMA up by these.
pub const ACCEL_CELL: &str = "accel_0";
/// AXI DMA cell name.
pub const DMA_CELL: &str = "axi_dma_0";
/// Block design name (the wrapper is `<BD_NAME>_wrapper`).
pub const BD_NAME: &str = "af_bd";
/// Vivado project name inside the project directory.
pub const PROJECT_NAME: &str = "af_proj";

/// Config keys and pin names of the PS ports a design uses.
struct PsPorts {
    cell: &'static str,
    vln: &'static str,
    clk_out: &'static str,
    rst_out: &'static str,
    irq_in: &'static str,
    master_intf: &'static str,
    master_aclk: &'static str,
    slave_intf: String,
    slave_aclk: String,
    /// `CONFIG.* value` pairs applied after the preset.
    config: Vec<(String, String)>,
    preset_rule: &'static str,
    preset_config: &'static str,
}

fn ps_ports(d: &ZynqDesign<'_>) -> PsPorts {
    let clk = format_mhz(d.accel.clock_mhz);
    let width = d.dma_port_width.to_string();
    match d.board.ps {
        PsType::Ps7 => {
            // dma_port is validated to be S_AXI_HP<n>.
            let n = d.dma_port.trim_start_matches("S_AXI_HP");
            PsPorts {
                cell: "processing_system7_0",
                vln: "xilinx.com:ip:processing_system7",
                clk_out: "FCLK_CLK0",
                rst_out: "FCLK_RESET0_N",
                irq_in: "IRQ_F2P",
                master_intf: "M_AXI_GP0",
                master_aclk: "M_AXI_GP0_ACLK",
                slave_intf: d.dma_port.clone(),
                slave_aclk: format!("{}_ACLK", d.dma_port),
                config: vec![
                    ("PCW_USE_M_AXI_GP0".into(), "1".into()),
                    ("PCW_USE_M_AXI_GP1".into(), "0".into()),
                    (format!("PCW_USE_S_AXI_HP{n}"), "1".into()),
                    (format!("PCW_S_AXI_HP{n}_DATA_WIDTH"), width),
                    ("PCW_EN_CLK0_PORT".into(), "1".into()),
                    ("PCW_EN_RST0_PORT".into(), "1".into()),
                    ("PCW_FPGA0_PERIPHERAL_FREQMHZ".into(), clk),
                    ("PCW_USE_FABRIC_INTERRUPT".into(), "1".into()),
                    ("PCW_IRQ_F2P_INTR".into(), "1".into()),
                ],
                preset_rule: "xilinx.com:bd_rule:processing_system7",
                preset_config: "make_external \"FIXED_IO, DDR\" Master \"Disable\" Slave \"Disable\"",
            }
        }
        PsType::Psu => {
            // S_AXI_HPC<n>_FPD is saxigp<n>, S_AXI_HP<n>_FPD is saxigp<n+2> (UG1085 naming).
            let (gp, aclk) = if let Some(n) = d
                .dma_port
                .strip_prefix("S_AXI_HPC")
                .and_then(|r| r.strip_suffix("_FPD"))
                .and_then(|n| n.parse::<u32>().ok())
            {
                (n, format!("saxihpc{n}_fpd_aclk"))
            } else {
                let n = d
                    .dma_port
                    .strip_prefix("S_AXI_HP")
                    .and_then(|r| r.strip_suffix("_FPD"))
                    .and_then(|n| n.parse::<u32>().ok())
                    .unwrap_or(0);
                (n + 2, format!("saxihp{n}_fpd_aclk"))
            };
            PsPorts {
                cell: "zynq_ultra_ps_e_0",
                vln: "xilinx.com:ip:zynq_ultra_ps_e",
                clk_out: "pl_clk0",
                rst_out: "pl_resetn0",
                irq_in: "pl_ps_irq0",
                master_intf: "M_AXI_HPM0_FPD",
                master_aclk: "maxihpm0_fpd_aclk",
                slave_intf: d.dma_port.clone(),
                slave_aclk: aclk,
                config: vec![
                    // Presets enable HPM1_FPD/HPM0_LPD too; an enabled but unclocked master
                    // fails validate_bd_design, so switch off what we do not use.
                    ("PSU__USE__M_AXI_GP0".into(), "1".into()),
                    ("PSU__USE__M_AXI_GP1".into(), "0".into()),
                    ("PSU__USE__M_AXI_GP2".into(), "0".into()),
                    (format!("PSU__USE__S_AXI_GP{gp}"), "1".into()),
                    (format!("PSU__SAXIGP{gp}__DATA_WIDTH"), width),
                    ("PSU__FPGA_PL0_ENABLE".into(), "1".into()),
                    ("PSU__CRL_APB__PL0_REF_CTRL__FREQMHZ".into(), clk),
                    ("PSU__USE__IRQ0".into(), "1".into()),
                ],
                preset_rule: "xilinx.com:bd_rule:zynq_ultra_ps_e",
                preset_config: "",
            }
        }
    }
}

/// Frequencies are written without a trailing `.0` because Vivado compares the
/// `*_FREQMHZ` strings it gets back.
fn format_mhz(mhz: f64) -> String {
    let s = format!("{mhz:.3}");
    let s = s.trim_end_matches('0').trim_end_matches('.');
    s.to_string()
}

/// `s` as one Tcl word that evaluates to exactly `s`: every character Tcl treats specially
/// (braces, brackets, `$`, quotes, `;`, `#`, backslash, white space) is backslash-escaped, so
/// no input can run a command or end the word.
pub fn tcl_word(s: &str) -> String {
    if s.is_empty() {
        return "{}".into();
    }
    let mut out = String::with_capacity(s.len() + 8);
    for c in s.chars() {
        match c {
            '\n' => out.push_str("\\n"),
            '\r' => out.push_str("\\r"),
            '\t' => out.push_str("\\t"),
            '{' | '}' | '[' | ']' | '$' | '"' | ';' | '#' | '\\' | ' ' => {
                out.push('\\');
                out.push(c);
            }
            c if c.is_control() => out.push_str(&format!("\\u{:04x}", c as u32)),
            c => out.push(c),
        }
    }
    out
}

fn tcl_list(items: &[String]) -> String {
    // Items are sanitised file names / identifiers; braces keep them literal anyway.
    items
        .iter()
        .map(|s| format!("{{{s}}}"))
        .collect::<Vec<_>>()
        .join(" ")
}

const HEADER: &str = r#"# Generated by @GEN@ for @BOARD@ (@PART_TEXT@). Do not edit: regenerate instead.
#
#   vivado -mode batch -source build.tcl [-tclargs --jobs N] [--proj-dir DIR]
#          [--allow-bare-part] [--allow-timing-failure]
#
# Without the board files for the board part it stops (the bare part has the wrong PS DDR, MIO
# and clock settings): --allow-bare-part or ACCELFORGE_ALLOW_BARE_PART=1 builds anyway. A routed
# design with negative WNS or WHS stops it too: --allow-timing-failure or
# ACCELFORGE_ALLOW_TIMING_FAILURE=1 keeps such a bitstream.
#
# Builds block design @BD@ (@BD_PARTS@), runs synthesis and implementation to a
# bitstream and copies @BASE@.bit and @BASE@.hwh next to this script (PYNQ's Overlay needs both,
# with one base name). Written for Vivado's Tcl 8.5.

set bundle_dir [file normalize [file dirname [info script]]]
set jobs @JOBS@
set proj_dir [file join $bundle_dir vivado_proj]
proc af_env_flag {name} {
    return [expr {[info exists ::env($name)] && $::env($name) eq "1"}]
}
set allow_bare_part [af_env_flag ACCELFORGE_ALLOW_BARE_PART]
set allow_timing_failure [af_env_flag ACCELFORGE_ALLOW_TIMING_FAILURE]
for {set i 0} {$i < [llength $argv]} {incr i} {
    set arg [lindex $argv $i]
    switch -exact -- $arg {
        --jobs {
            incr i
            set jobs [lindex $argv $i]
        }
        --proj-dir {
            incr i
            set proj_dir [file normalize [lindex $argv $i]]
        }
        --allow-bare-part {
            set allow_bare_part 1
        }
        --allow-timing-failure {
            set allow_timing_failure 1
        }
        default {
            error "build.tcl: unknown argument '$arg' (expected --jobs N, --proj-dir DIR, --allow-bare-part or --allow-timing-failure)"
        }
    }
}
if {![string is integer -strict $jobs] || $jobs < 1} {
    error "build.tcl: --jobs needs a positive integer, got '$jobs'"
}

set proj_name @PROJ@
set part @PART@
set board_part @BOARD_PART@
set board_parts [list @BOARD_PARTS@]
set bd_name @BD@
set top_module @TOP@
@MORE_TOPS@set base_name @BASE@

# Pick the newest installed version of an IP so the script survives Vivado upgrades.
proc af_vlnv {vln} {
    set defs [get_ipdefs -quiet "${vln}:*"]
    if {[llength $defs] == 0} {
        error "build.tcl: IP $vln is not in this Vivado's IP catalog"
    }
    return [lindex [lsort -dictionary $defs] end]
}

# Fail with the run's own status and log path instead of copying a stale or missing bitstream.
proc af_check_run {run} {
    set progress [get_property PROGRESS [get_runs $run]]
    set status [get_property STATUS [get_runs $run]]
    if {$progress ne "100%"} {
        set log [file join [get_property DIRECTORY [get_runs $run]] runme.log]
        error "build.tcl: run $run did not complete (status: $status, progress: $progress); see $log"
    }
    puts "accelforge: $run: $status"
}

create_project $proj_name $proj_dir -part $part -force
set use_board_preset 0
if {$board_part ne ""} {
    # The board part, then the other names its files are installed under; each exact first,
    # then any file version of it (as good as the exact one).
    set found {}
    foreach candidate $board_parts {
        if {[llength $found] == 0} {
            set found [get_board_parts -quiet $candidate]
        }
    }
    foreach candidate $board_parts {
        if {[llength $found] == 0} {
            set pattern "[join [lrange [split $candidate :] 0 2] :]:*"
            set found [get_board_parts -quiet -latest_file_version $pattern]
        }
    }
    if {[llength $found] > 0} {
        set_property board_part [lindex $found 0] [current_project]
        set use_board_preset 1
    } elseif {$allow_bare_part} {
        puts "WARNING: accelforge: board files for $board_part are not installed; building for the bare part $part without the board's PS preset (DDR, MIO and PS clock settings stay at IP defaults: install the board files for a bitstream that boots)"
    } else {
        error "build.tcl: board files for $board_part are not installed (get_board_parts finds none). Install them (Vivado: Tools > Vivado Store > Boards, or the vendor's board files in a directory named by set_param board.repoPaths), or build for the bare part $part without the board's PS preset (wrong DDR, MIO and PS clocks on most boards) with -tclargs --allow-bare-part or ACCELFORGE_ALLOW_BARE_PART=1"
    }
}

# The accelerator is a module reference, so its plain-Verilog sources go into the project.
set hdl_files [list @HDL_FILES@]
set hdl_paths {}
foreach f $hdl_files {
    lappend hdl_paths [file join $bundle_dir hdl $f]
}
add_files -norecurse $hdl_paths
update_compile_order -fileset sources_1

create_bd_design $bd_name
"#;

/// The data path's explanation, before the first engine's DMA.
const DATA_PATH_NOTE: &str = r#"
# Data path: DMA reads the input buffer (MM2S) into the accelerator and writes its output
# stream back (S2MM). Simple mode, no scatter-gather: PYNQ's DMA driver uses it this way.
"#;

/// One engine's AXI DMA.
const ENGINE_DMA: &str = r#"set dma [create_bd_cell -type ip -vlnv [af_vlnv xilinx.com:ip:axi_dma] @DMA@]
# The stream widths follow the connected interfaces unless marked as set by the user.
set_property -dict [list \
    CONFIG.c_m_axis_mm2s_tdata_width.VALUE_SRC USER \
    CONFIG.c_s_axis_s2mm_tdata_width.VALUE_SRC USER \
] $dma
set_property -dict [list \
    CONFIG.c_include_sg {0} \
    CONFIG.c_sg_length_width {@LEN_BITS@} \
    CONFIG.c_include_mm2s {1} \
    CONFIG.c_include_s2mm {1} \
    CONFIG.c_m_axis_mm2s_tdata_width {@IN_BITS@} \
    CONFIG.c_s_axis_s2mm_tdata_width {@OUT_BITS@} \
    CONFIG.c_m_axi_mm2s_data_width {@MM2S_MM_BITS@} \
    CONFIG.c_m_axi_s2mm_data_width {@S2MM_MM_BITS@} \
    CONFIG.c_mm2s_burst_size {16} \
    CONFIG.c_s2mm_burst_size {16} \
    CONFIG.c_addr_width {@ADDR_BITS@} \
] $dma
"#;

/// The interconnects, the reset and the interrupt concatenation every engine shares.
const SHARED_CELLS: &str = r#"
set ctrl_smc [create_bd_cell -type ip -vlnv [af_vlnv xilinx.com:ip:smartconnect] ctrl_smc]
set_property -dict [list CONFIG.NUM_SI {1} CONFIG.NUM_MI {@CTRL_MI@}] $ctrl_smc
set data_smc [create_bd_cell -type ip -vlnv [af_vlnv xilinx.com:ip:smartconnect] data_smc]
set_property -dict [list CONFIG.NUM_SI {@DATA_SI@} CONFIG.NUM_MI {1}] $data_smc
set rst [create_bd_cell -type ip -vlnv [af_vlnv xilinx.com:ip:proc_sys_reset] rst_pl]
set irq_concat [create_bd_cell -type ip -vlnv [af_vlnv xilinx.com:ip:xlconcat] irq_concat]
set_property -dict [list CONFIG.NUM_PORTS {@IRQS@}] $irq_concat
"#;

const BD_TAIL: &str = r#"assign_bd_address
validate_bd_design
save_bd_design

set bd_file [get_files $bd_name.bd]
generate_target all $bd_file
add_files -norecurse [make_wrapper -files $bd_file -top]
set_property top ${bd_name}_wrapper [current_fileset]
update_compile_order -fileset sources_1

launch_runs synth_1 -jobs $jobs
wait_on_run synth_1
af_check_run synth_1
launch_runs impl_1 -to_step write_bitstream -jobs $jobs
wait_on_run impl_1
af_check_run impl_1
# A bitstream that failed timing may work on the bench and fail in the field: refuse it.
set wns [get_property STATS.WNS [get_runs impl_1]]
set whs [get_property STATS.WHS [get_runs impl_1]]
if {![string is double -strict $wns] || ![string is double -strict $whs]} {
    error "build.tcl: could not read the routed design's timing (WNS '$wns', WHS '$whs')"
}
if {$wns < 0 || $whs < 0} {
    set msg "routed design fails timing: WNS $wns ns, WHS $whs ns (lower the clock with gen --clock-mhz, or keep this bitstream with -tclargs --allow-timing-failure or ACCELFORGE_ALLOW_TIMING_FAILURE=1)"
    if {$allow_timing_failure} {
        puts "WARNING: accelforge: $msg"
    } else {
        error "build.tcl: $msg"
    }
}
puts "accelforge: timing met: WNS $wns ns, WHS $whs ns"

set bit_file [file join [get_property DIRECTORY [get_runs impl_1]] ${bd_name}_wrapper.bit]
if {![file exists $bit_file]} {
    error "build.tcl: implementation finished but $bit_file is missing"
}
# Vivado 2020.2+ writes generated BD products under .gen, older releases under .srcs.
set hwh_file ""
foreach dir [list $proj_name.gen $proj_name.srcs] {
    set candidate [file join $proj_dir $dir sources_1 bd $bd_name hw_handoff $bd_name.hwh]
    if {[file exists $candidate]} {
        set hwh_file $candidate
        break
    }
}
if {$hwh_file eq ""} {
    error "build.tcl: no hardware handoff ($bd_name.hwh) found under $proj_dir"
}
file copy -force $bit_file [file join $bundle_dir $base_name.bit]
file copy -force $hwh_file [file join $bundle_dir $base_name.hwh]
puts "accelforge: wrote [file join $bundle_dir $base_name.bit] and [file join $bundle_dir $base_name.hwh]"
"#;

const OOC: &str = r#"# Generated by @GEN@ for @BOARD@ (@PART_TEXT@). Do not edit: regenerate instead.
#
#   vivado -mode batch -source synth_ooc.tcl
#
# Synthesises @TOP@ alone, out of context (no PS, no DMA), with the clock from @BASE@.xdc,
# and writes a utilisation report: the numbers to calibrate the resource model against.
set bundle_dir [file normalize [file dirname [info script]]]
set hdl_files [list @HDL_FILES@]
foreach f $hdl_files {
    read_verilog [file join $bundle_dir hdl $f]
}
read_xdc -mode out_of_context [file join $bundle_dir @BASE@.xdc]
synth_design -top @TOP@ -part @PART@ -mode out_of_context
report_utilization -file [file join $bundle_dir @BASE@_ooc_utilization.rpt]
report_timing_summary -file [file join $bundle_dir @BASE@_ooc_timing.rpt]
puts "accelforge: wrote [file join $bundle_dir @BASE@_ooc_utilization.rpt]"
"#;

fn common_subs(d: &ZynqDesign<'_>, sources: &[String]) -> Vec<(&'static str, String)> {
    vec![
        ("@GEN@", super::generator_id()),
        ("@BOARD@", d.board.display_name.clone()),
        // Comments keep the plain text (validated free of line breaks and backslashes).
        ("@PART_TEXT@", d.board.part.value.clone()),
        ("@PART@", tcl_word(&d.board.part.value)),
        ("@TOP@", d.accel.name.clone()),
        ("@BASE@", d.base_name()),
        ("@HDL_FILES@", tcl_list(sources)),
    ]
}

const FETCH_BD: &str = r#"# Weight fetch: every weight request of the accelerator is an MM2S command to an AXI DataMover
# (PG022), which reads the segment from DDR through data_smc and streams it into
# @ACCEL@/s_axis_w; its status comes back to @ACCEL@ (errors show in REG_FETCH_STATUS).
# MM2S only; no realignment engine (segments are @ALIGN@-byte aligned).
set datamover [create_bd_cell -type ip -vlnv [af_vlnv xilinx.com:ip:axi_datamover] @DM@]
set_property -dict [list \
    CONFIG.c_include_mm2s {Full} \
    CONFIG.c_include_s2mm {Omit} \
    CONFIG.c_m_axi_mm2s_data_width {@DM_MM_BITS@} \
    CONFIG.c_m_axis_mm2s_tdata_width {@DM_BITS@} \
    CONFIG.c_mm2s_burst_size {16} \
    CONFIG.c_mm2s_btt_used {@BTT_BITS@} \
    CONFIG.c_include_mm2s_dre {false} \
    CONFIG.c_include_mm2s_stsfifo {true} \
    CONFIG.c_addr_width {@ADDR_BITS@} \
] $datamover
connect_bd_net [get_bd_pins @PS@/@CLK@] \
    [get_bd_pins @DM@/m_axi_mm2s_aclk] \
    [get_bd_pins @DM@/m_axis_mm2s_cmdsts_aclk]
connect_bd_net [get_bd_pins rst_pl/peripheral_aresetn] \
    [get_bd_pins @DM@/m_axi_mm2s_aresetn] \
    [get_bd_pins @DM@/m_axis_mm2s_cmdsts_aresetn]
connect_bd_intf_net [get_bd_intf_pins @ACCEL@/m_axis_mm2s_cmd] [get_bd_intf_pins @DM@/S_AXIS_MM2S_CMD]
connect_bd_intf_net [get_bd_intf_pins @DM@/M_AXIS_MM2S_STS] [get_bd_intf_pins @ACCEL@/s_axis_mm2s_sts]
connect_bd_intf_net [get_bd_intf_pins @DM@/M_AXIS_MM2S] [get_bd_intf_pins @ACCEL@/s_axis_w]
connect_bd_intf_net [get_bd_intf_pins @DM@/M_AXI_MM2S] [get_bd_intf_pins data_smc/@DM_SI@]

"#;

/// DataMover cell name of a one-engine design (weight fetch designs only).
pub const DATAMOVER_CELL: &str = "axi_datamover_0";

/// `build.tcl` of a one-engine bundle. `sources` are the file names under the bundle's `hdl/`
/// directory.
pub fn build_tcl(d: &ZynqDesign<'_>, sources: &[String]) -> String {
    // Alone in its block design the accelerator is engine 0, whatever `d` was numbered.
    let alone = d.clone().as_engine(0, &d.bitstream);
    engines_build_tcl(std::slice::from_ref(&alone), sources)
        .unwrap_or_else(|e| unreachable!("engine 0 alone always fits a block design: {e}"))
}

/// `build.tcl` of a block design with several engines, each accelerator behind its own AXI
/// DMA (and DataMover), all on one PL clock and one PS slave port: engine `n` is `accel_<n>`
/// with `axi_dma_<n>`. `ds` come from [`ZynqDesign::as_engine`] with their index in order;
/// `sources` are every engine's files. One engine gives the one-engine script.
pub fn engines_build_tcl(ds: &[ZynqDesign<'_>], sources: &[String]) -> Result<String> {
    let d = check_engines(ds)?;
    let ps = ps_ports(d);
    let mut subs = common_subs(d, sources);
    let bd_parts = if ds.len() == 1 {
        format!("PS + AXI DMA + {}", d.accel.name)
    } else {
        let each: Vec<String> = ds
            .iter()
            .map(|e| format!("{} + {}", e.dma_cell(), e.accel.name))
            .collect();
        format!("PS + {} engines: {}", ds.len(), each.join(", "))
    };
    let more_tops: String = ds
        .iter()
        .skip(1)
        .map(|e| format!("set top_module_{} {}\n", e.engine, e.accel.name))
        .collect();
    subs.extend([
        ("@JOBS@", d.options.jobs.max(1).to_string()),
        ("@PROJ@", PROJECT_NAME.to_string()),
        ("@BD@", BD_NAME.to_string()),
        ("@BD_PARTS@", bd_parts),
        ("@MORE_TOPS@", more_tops),
        (
            "@BOARD_PART@",
            d.board
                .board_part
                .as_ref()
                .map(|b| tcl_word(&b.value))
                .unwrap_or_else(|| "{}".into()),
        ),
        (
            "@BOARD_PARTS@",
            d.board
                .board_part
                .iter()
                .map(|b| &b.value)
                .chain(&d.board.board_part_alternates)
                .map(|v| tcl_word(v))
                .collect::<Vec<_>>()
                .join(" "),
        ),
    ]);
    let mut out = fill(HEADER, &subs);

    out.push_str(&format!(
        "\n# Processing system with the board preset (DDR, MIO, clocks) when the board files exist.\n\
         set ps [create_bd_cell -type ip -vlnv [af_vlnv {vln}] {cell}]\n\
         apply_bd_automation -rule {rule} -config [list {cfg} apply_board_preset $use_board_preset] $ps\n",
        vln = ps.vln,
        cell = ps.cell,
        rule = ps.preset_rule,
        cfg = ps.preset_config,
    ));
    out.push_str(&format!(
        "# Ports this design uses: {master} for registers, {slave} for DMA, PL clock 0 at {mhz} MHz, PL-to-PS interrupts.\n\
         set_property -dict [list \\\n",
        master = ps.master_intf,
        slave = ps.slave_intf,
        mhz = format_mhz(d.accel.clock_mhz),
    ));
    for (k, v) in &ps.config {
        out.push_str(&format!("    CONFIG.{k} {{{v}}} \\\n"));
    }
    out.push_str("] $ps\n");
    out.push_str(&block_design(ds, &ps));
    out.push_str(&fill(BD_TAIL, &subs));
    Ok(out)
}

/// The engines of one block design agree on what they share (board, clock, DMA port, the
/// bitstream's name) and are numbered in order. Returns the first.
pub(crate) fn check_engines<'a, 'b>(ds: &'a [ZynqDesign<'b>]) -> Result<&'a ZynqDesign<'b>> {
    let first = ds.first().ok_or_else(|| BoardError::Interface {
        accel: String::new(),
        field: "engines".into(),
        problem: "a block design needs at least one accelerator".into(),
    })?;
    let problem = |e: &ZynqDesign<'_>, what: String| BoardError::Interface {
        accel: e.accel.name.clone(),
        field: "engines".into(),
        problem: what,
    };
    // It names files and goes into Tcl and Python unquoted, as a module name does.
    if super::accel::sanitize_identifier(&first.bitstream) != first.bitstream {
        return Err(problem(
            first,
            format!(
                "the bitstream name `{}` is not a plain identifier (letters, digits, `_`)",
                first.bitstream
            ),
        ));
    }
    for (i, e) in ds.iter().enumerate() {
        if e.engine != i {
            return Err(problem(
                e,
                format!("is engine {} but listed as {i}", e.engine),
            ));
        }
        if e.board.name != first.board.name
            || e.accel.clock_mhz != first.accel.clock_mhz
            || e.dma_port != first.dma_port
            || e.bitstream != first.bitstream
        {
            return Err(problem(
                e,
                format!(
                    "engines of one block design share the board, the PL clock, the DMA port and \
                     the bitstream; this one has {} at {} MHz through {} into {}, engine 0 {} at \
                     {} MHz through {} into {}",
                    e.board.name,
                    e.accel.clock_mhz,
                    e.dma_port,
                    e.bitstream,
                    first.board.name,
                    first.accel.clock_mhz,
                    first.dma_port,
                    first.bitstream
                ),
            ));
        }
        if ds[..i].iter().any(|o| o.accel.name == e.accel.name) {
            return Err(problem(e, "two engines with one module name".into()));
        }
    }
    // Three interrupt lines per engine into the PS: IRQ_F2P has 16, pl_ps_irq0 8.
    let lines = match first.board.ps {
        PsType::Ps7 => 16,
        PsType::Psu => 8,
    };
    if 3 * ds.len() > lines {
        return Err(problem(
            first,
            format!(
                "{} engines need {} interrupt lines; {} has {lines}",
                ds.len(),
                3 * ds.len(),
                first.board.ps.ip_name()
            ),
        ));
    }
    Ok(first)
}

/// The block design from the DMAs to the address map: each engine's cells, the shared
/// interconnects, and every net, numbered per engine (control master `M<2n>`/`M<2n+1>`,
/// interrupts `In<3n>`.., data slaves in engine order).
fn block_design(ds: &[ZynqDesign<'_>], ps: &PsPorts) -> String {
    let addr_bits = super::dma_addr_bits(ds[0].board.ps).to_string();
    // The data SmartConnect's slave ports: per engine MM2S, S2MM, then the DataMover's.
    let mut data_si = 0;
    let mut engines = Vec::new();
    for d in ds {
        let first_si = data_si;
        data_si += if d.accel.weight_fetch.is_some() { 3 } else { 2 };
        let mut subs: Vec<(&str, String)> = vec![
            ("@DMA@", d.dma_cell()),
            ("@ACCEL@", d.accel_cell()),
            ("@DM@", d.datamover_cell()),
            ("@PS@", ps.cell.to_string()),
            ("@CLK@", ps.clk_out.to_string()),
            ("@LEN_BITS@", d.accel.dma_length_bits().to_string()),
            ("@IN_BITS@", d.accel.in_stream_bits.to_string()),
            ("@OUT_BITS@", d.accel.out_stream_bits.to_string()),
            ("@MM2S_MM_BITS@", d.accel.in_stream_bits.max(32).to_string()),
            (
                "@S2MM_MM_BITS@",
                d.accel.out_stream_bits.max(32).to_string(),
            ),
            ("@ADDR_BITS@", addr_bits.clone()),
            ("@DM_SI@", format!("S{:02}_AXI", first_si + 2)),
        ];
        if let Some(f) = &d.accel.weight_fetch {
            subs.extend([
                ("@DM_BITS@", f.stream_bits.to_string()),
                ("@DM_MM_BITS@", f.mm_bits().to_string()),
                ("@BTT_BITS@", f.btt_bits().to_string()),
                ("@ALIGN@", super::accel::WEIGHT_SEGMENT_ALIGN.to_string()),
            ]);
        }
        engines.push((d, first_si, subs));
    }
    let pin = |p: String| format!("[get_bd_pins {p}]");
    // Two pins on one line, longer nets one pin per line.
    let net = |pins: Vec<String>| {
        let sep = if pins.len() == 2 { " " } else { " \\\n    " };
        format!("connect_bd_net {}\n", pins.join(sep))
    };
    let intf = |a: String, b: String| {
        format!("connect_bd_intf_net [get_bd_intf_pins {a}] [get_bd_intf_pins {b}]\n")
    };
    let mut out = String::from(DATA_PATH_NOTE);
    for (_, _, subs) in &engines {
        out.push_str(&fill(ENGINE_DMA, subs));
    }
    out.push_str(&fill(
        SHARED_CELLS,
        &[
            ("@CTRL_MI@", (2 * ds.len()).to_string()),
            ("@DATA_SI@", data_si.to_string()),
            ("@IRQS@", (3 * ds.len()).to_string()),
        ],
    ));
    for (d, _, _) in &engines {
        let var = if d.engine == 0 {
            "top_module".to_string()
        } else {
            format!("top_module_{}", d.engine)
        };
        out.push_str(&format!(
            "set accel [create_bd_cell -type module -reference ${var} {}]\n",
            d.accel_cell()
        ));
    }
    let (psc, dmas, accels) = (
        ps.cell,
        ds.iter().map(|d| d.dma_cell()).collect::<Vec<_>>(),
        ds.iter().map(|d| d.accel_cell()).collect::<Vec<_>>(),
    );
    out.push_str("\n# One clock domain: the PS PL clock drives everything.\n");
    let mut clk = vec![
        pin(format!("{psc}/{}", ps.clk_out)),
        pin(format!("{psc}/{}", ps.master_aclk)),
        pin(format!("{psc}/{}", ps.slave_aclk)),
    ];
    for dma in &dmas {
        for p in ["s_axi_lite_aclk", "m_axi_mm2s_aclk", "m_axi_s2mm_aclk"] {
            clk.push(pin(format!("{dma}/{p}")));
        }
    }
    clk.extend(
        ["ctrl_smc/aclk", "data_smc/aclk", "rst_pl/slowest_sync_clk"].map(|p| pin(p.into())),
    );
    clk.extend(accels.iter().map(|a| pin(format!("{a}/ap_clk"))));
    out.push_str(&net(clk));
    out.push_str(&net(vec![
        pin(format!("{psc}/{}", ps.rst_out)),
        pin("rst_pl/ext_reset_in".into()),
    ]));
    out.push_str(&net([
        "rst_pl/interconnect_aresetn",
        "ctrl_smc/aresetn",
        "data_smc/aresetn",
    ]
    .map(|p| pin(p.into()))
    .to_vec()));
    let mut periph = vec![pin("rst_pl/peripheral_aresetn".into())];
    periph.extend(dmas.iter().map(|d| pin(format!("{d}/axi_resetn"))));
    periph.extend(accels.iter().map(|a| pin(format!("{a}/ap_rst_n"))));
    out.push_str(&net(periph));

    out.push_str(
        "\n# Control: PS master -> smartconnect -> DMA registers and accelerator registers.\n",
    );
    out.push_str(&intf(
        format!("{psc}/{}", ps.master_intf),
        "ctrl_smc/S00_AXI".into(),
    ));
    for (n, (dma, acc)) in dmas.iter().zip(&accels).enumerate() {
        out.push_str(&intf(
            format!("ctrl_smc/M{:02}_AXI", 2 * n),
            format!("{dma}/S_AXI_LITE"),
        ));
        out.push_str(&intf(
            format!("ctrl_smc/M{:02}_AXI", 2 * n + 1),
            format!("{acc}/s_axi_control"),
        ));
    }

    out.push_str(
        "\n# Memory: both DMA channels -> smartconnect (width conversion) -> PS slave port to DDR.\n",
    );
    for (d, si, _) in &engines {
        let dma = d.dma_cell();
        out.push_str(&intf(
            format!("{dma}/M_AXI_MM2S"),
            format!("data_smc/S{si:02}_AXI"),
        ));
        out.push_str(&intf(
            format!("{dma}/M_AXI_S2MM"),
            format!("data_smc/S{:02}_AXI", si + 1),
        ));
    }
    out.push_str(&intf(
        "data_smc/M00_AXI".into(),
        format!("{psc}/{}", ps.slave_intf),
    ));

    out.push_str("\n# Streams.\n");
    for (dma, acc) in dmas.iter().zip(&accels) {
        out.push_str(&intf(
            format!("{dma}/M_AXIS_MM2S"),
            format!("{acc}/s_axis_in"),
        ));
        out.push_str(&intf(
            format!("{acc}/m_axis_out"),
            format!("{dma}/S_AXIS_S2MM"),
        ));
    }

    out.push_str(
        "\n# Interrupts: accelerator done, DMA MM2S, DMA S2MM (PYNQ polls, but the lines cost nothing).\n",
    );
    for (n, (dma, acc)) in dmas.iter().zip(&accels).enumerate() {
        for (k, src) in [
            format!("{acc}/interrupt"),
            format!("{dma}/mm2s_introut"),
            format!("{dma}/s2mm_introut"),
        ]
        .into_iter()
        .enumerate()
        {
            out.push_str(&net(vec![
                pin(src),
                pin(format!("irq_concat/In{}", 3 * n + k)),
            ]));
        }
    }
    out.push_str(&net(vec![
        pin("irq_concat/dout".into()),
        pin(format!("{psc}/{}", ps.irq_in)),
    ]));
    out.push('\n');
    for (d, _, subs) in &engines {
        if d.accel.weight_fetch.is_some() {
            out.push_str(&fill(FETCH_BD, subs));
        }
    }
    let windows = if ds.len() == 1 {
        "# The accelerator's register window gets 64 KiB"
    } else {
        "# Each accelerator's register window gets 64 KiB"
    };
    out.push_str(&format!(
        "{windows} (at least the 4 KiB page the PYNQ driver\n\
         # maps), not the smallest range that covers its address bits.\n"
    ));
    for acc in &accels {
        out.push_str(&format!(
            "assign_bd_address -target_address_space [get_bd_addr_spaces {psc}/Data] -range 64K \\\n    \
             [get_bd_addr_segs -of_objects [get_bd_intf_pins {acc}/s_axi_control]]\n"
        ));
    }
    out
}

/// `synth_ooc.tcl`: the accelerator alone (one per engine in a several-engine bundle).
pub fn synth_ooc_tcl(d: &ZynqDesign<'_>, sources: &[String]) -> String {
    let mut subs = common_subs(d, sources);
    for s in &mut subs {
        if s.0 == "@BASE@" {
            s.1 = d.ooc_name();
        }
    }
    fill(OOC, &subs)
}

#[cfg(test)]
mod tests {
    use super::format_mhz;

    #[test]
    fn mhz_formatting() {
        assert_eq!(format_mhz(100.0), "100");
        assert_eq!(format_mhz(150.0), "150");
        assert_eq!(format_mhz(142.857), "142.857");
        assert_eq!(format_mhz(62.5), "62.5");
    }
}
