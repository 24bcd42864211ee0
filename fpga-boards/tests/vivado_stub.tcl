# Stand-ins for the Vivado Tcl commands accelforge's generated scripts use, for running those
# scripts under plain tclsh. Vivado is not installable here, so this is how the scripts are
# exercised: every command checks its options against a table taken from Vivado's documented
# usage (UG835, "Vivado Design Suite Tcl Command Reference"), and the block-design commands
# keep a model of cells, pins, nets and interface connections so that a pin that the IP would
# not have (wrong name, port not enabled in CONFIG) or a nonsensical connection fails here as it
# would in Vivado. Any command that is neither a Tcl builtin nor in the table fails.
#
# Use:  source vivado_stub.tcl
#       ::stub::declare_module <top> {{name input|output width} ...}
#       ::stub::set_board_parts {list of installed board parts}
#       set argv {...}; source build.tcl
#       ::stub::finish
#
# The option tables were written from memory of UG835 and cover the options accelforge uses
# plus their common siblings; extend a row when Vivado documents more.

namespace eval ::stub {
    variable known [dict create]
    variable proj [dict create]
    variable board_parts {}
    variable modules [dict create]
    variable sources {}
    variable constrs {}
    variable bd ""
    variable bd_state [dict create validated 0 saved 0 addressed 0]
    variable cells [dict create]
    variable net_of [dict create]
    variable net_pins [dict create]
    variable next_net 0
    variable intf_peer [dict create]
    variable runs [dict create]
    variable top ""
    variable ooc [dict create xdc {} verilog {}]
    variable ncommands 0
    # Routed timing of impl_1 (ns) reported through STATS.WNS / STATS.WHS; ::stub::set_timing.
    variable timing [dict create WNS 0.125 WHS 0.021]
    # Register windows given an explicit range: slave segment -> range.
    variable ranges [dict create]
    # IP catalogue: what get_ipdefs returns. Two PS8 versions so "pick the newest" is exercised.
    variable catalog {
        xilinx.com:ip:processing_system7:5.5
        xilinx.com:ip:zynq_ultra_ps_e:3.4
        xilinx.com:ip:zynq_ultra_ps_e:3.5
        xilinx.com:ip:axi_dma:7.1
        xilinx.com:ip:axi_datamover:5.1
        xilinx.com:ip:smartconnect:1.0
        xilinx.com:ip:proc_sys_reset:5.0
        xilinx.com:ip:xlconcat:2.1
    }
}

proc ::stub::fail {msg} {
    puts stderr "VIVADO-STUB ERROR: $msg"
    error "VIVADO-STUB: $msg"
}

# Registers a command: boolean flags, options taking a value, positional argument count range
# (max -1 = unbounded). -quiet and -verbose are accepted by every Vivado command.
proc ::stub::cmd {name flags opts minpos maxpos} {
    variable known
    dict set known $name [dict create flags [concat $flags -quiet -verbose] opts $opts min $minpos max $maxpos]
}

proc ::stub::parse {name argl} {
    variable known
    variable ncommands
    incr ncommands
    set spec [dict get $known $name]
    set flags [dict get $spec flags]
    set opts [dict get $spec opts]
    set res [dict create]
    set pos {}
    set n [llength $argl]
    for {set i 0} {$i < $n} {incr i} {
        set a [lindex $argl $i]
        if {[string match -* $a] && ![string is double -strict $a]} {
            if {[lsearch -exact $flags $a] >= 0} {
                dict set res $a 1
            } elseif {[lsearch -exact $opts $a] >= 0} {
                incr i
                if {$i >= $n} {
                    fail "$name: option $a needs a value"
                }
                dict set res $a [lindex $argl $i]
            } else {
                fail "$name: unknown option '$a' (known: [lsort [concat $flags $opts]])"
            }
        } else {
            lappend pos $a
        }
    }
    set min [dict get $spec min]
    set max [dict get $spec max]
    if {[llength $pos] < $min || ($max >= 0 && [llength $pos] > $max)} {
        fail "$name: got [llength $pos] positional argument(s) ([join $pos {, }]), expected $min..[expr {$max < 0 ? {any} : $max}]"
    }
    return [list $res $pos]
}

proc ::stub::opt {o key {default ""}} {
    if {[dict exists $o $key]} {
        return [dict get $o $key]
    }
    return $default
}

# ---- option tables (UG835) -------------------------------------------------------------------
::stub::cmd create_project {-force -in_memory -ip -rtl_kernel} {-part} 0 2
::stub::cmd current_project {} {} 0 1
::stub::cmd current_fileset {-constrset -simset} {} 0 1
::stub::cmd get_board_parts {-latest_file_version -latest_hw_revision -regexp -nocase} {-filter -of_objects} 0 1
::stub::cmd get_ipdefs {-all -regexp -nocase} {-filter -of_objects -name} 0 1
::stub::cmd set_property {} {-dict} 1 3
::stub::cmd get_property {-min -max} {-object} 2 2
::stub::cmd add_files {-norecurse -force -scan_for_includes} {-fileset -of_objects -copy_to} 1 -1
::stub::cmd update_compile_order {-force_gui} {-fileset} 0 0
::stub::cmd create_bd_design {} {-dir -cell -bdsource -mode} 1 1
::stub::cmd create_bd_cell {} {-vlnv -reference -type -dir -prop} 1 1
::stub::cmd apply_bd_automation {} {-rule -dict -config -opts} 0 1
::stub::cmd get_bd_cells {-hierarchical -regexp -nocase} {-filter -of_objects} 0 1
::stub::cmd get_bd_pins {-hierarchical -regexp -nocase} {-filter -of_objects} 0 1
::stub::cmd get_bd_intf_pins {-hierarchical -regexp -nocase} {-filter -of_objects} 0 1
::stub::cmd connect_bd_net {} {-design -net} 1 -1
::stub::cmd connect_bd_intf_net {} {-design -intf_net -boundary_type} 2 2
::stub::cmd get_bd_addr_spaces {-regexp -nocase} {-filter -of_objects} 0 1
::stub::cmd get_bd_addr_segs {-regexp -nocase -excluded -addressed -unaddressed} {-filter -of_objects} 0 1
::stub::cmd assign_bd_address {-boundary -force -external} {-target_address_space -offset -range -export_to_file -export_gui_to_file -import_from_file -dict} 0 1
::stub::cmd validate_bd_design {-force} {-design} 0 0
::stub::cmd save_bd_design {} {-design} 0 1
::stub::cmd get_files {-all -regexp -nocase} {-filter -of_objects -compile_order -used_in} 0 1
::stub::cmd generate_target {-force} {} 2 2
::stub::cmd make_wrapper {-top -testbench -inst_template -import -force} {-files -fileset} 0 0
::stub::cmd launch_runs {-force -scripts_only -all_placement} {-jobs -to_step -next_step -host -remote_cmd -dir -lsf -pre_launch_script -post_launch_script -custom_script} 1 -1
::stub::cmd wait_on_run {} {-timeout} 1 1
::stub::cmd get_runs {-regexp -nocase} {-filter -of_objects} 0 1
::stub::cmd read_verilog {-sv} {-library} 1 1
::stub::cmd read_xdc {-unmanaged -no_add -quiet_diff_pairs} {-ref -cells -mode} 1 1
::stub::cmd synth_design {-rtl -no_lc -no_srlextract -no_timing_driven -retiming -incremental_mode} {-top -part -mode -flatten_hierarchy -directive -include_dirs -generic -verilog_define -constrset -fanout_limit -fsm_extraction -max_bram -max_uram -max_dsp -shreg_min_size -resource_sharing -control_set_opt_threshold -gated_clock_conversion -bufg -jobs} 0 0
::stub::cmd report_utilization {-append -hierarchical -return_string -spreadsheet_table} {-file -cells -pblocks -slr -packthru -hierarchical_depth -spreadsheet_file -format -name} 0 0
::stub::cmd report_timing_summary {-append -return_string -no_header -report_unconstrained -no_detailed_paths} {-file -delay_type -max_paths -nworst -name -rpx -setup -hold -cells} 0 0
::stub::cmd create_clock {-add} {-period -name -waveform} 0 1
::stub::cmd get_ports {-regexp -nocase} {-filter -of_objects} 0 1

# Vivado embeds Tcl 8.5: commands new in 8.6 must not appear in generated scripts.
foreach c {lmap try throw tailcall coroutine yield yieldto zlib} {
    if {[llength [info commands ::$c]]} {
        rename ::$c {}
    }
}
rename ::unknown ::stub::orig_unknown
proc ::unknown {args} {
    ::stub::fail "invalid command '[lindex $args 0]': neither a Tcl 8.5 builtin nor a Vivado command the stub knows"
}

# ---- test configuration ----------------------------------------------------------------------
proc ::stub::declare_module {name ports} {
    variable modules
    foreach p $ports {
        if {[llength $p] != 3 || [lsearch -exact {input output} [lindex $p 1]] < 0} {
            fail "declare_module $name: bad port $p"
        }
    }
    dict set modules $name $ports
}
proc ::stub::set_board_parts {parts} {
    variable board_parts
    set board_parts $parts
}

# ---- project ---------------------------------------------------------------------------------
proc ::stub::need_project {what} {
    variable proj
    if {![dict exists $proj name]} {
        fail "$what: no open project (create_project first)"
    }
}

proc create_project {args} {
    lassign [::stub::parse create_project $args] o pos
    set name [lindex $pos 0]
    set dir [lindex $pos 1]
    if {$name eq "" || $dir eq ""} {
        ::stub::fail "create_project: give both a name and a directory"
    }
    set part [::stub::opt $o -part]
    if {![regexp {^(xc7z|xczu|xck26)[0-9A-Za-z-]+$} $part]} {
        ::stub::fail "create_project: '$part' is not a Zynq part"
    }
    if {[file exists $dir] && [llength [glob -nocomplain -directory $dir *]] > 0 && ![dict exists $o -force]} {
        ::stub::fail "create_project: $dir is not empty and -force was not given"
    }
    file mkdir $dir
    set ::stub::proj [dict create name $name dir [file normalize $dir] part $part board_part ""]
    set ::stub::runs [dict create synth_1 [dict create launched 0 waited 0] impl_1 [dict create launched 0 waited 0 bitstream 0]]
    return $name
}

proc current_project {args} {
    lassign [::stub::parse current_project $args] o pos
    ::stub::need_project current_project
    return [dict get $::stub::proj name]
}

proc current_fileset {args} {
    lassign [::stub::parse current_fileset $args] o pos
    ::stub::need_project current_fileset
    if {[dict exists $o -constrset]} {
        return constrs_1
    }
    if {[dict exists $o -simset]} {
        return sim_1
    }
    return sources_1
}

proc get_board_parts {args} {
    lassign [::stub::parse get_board_parts $args] o pos
    set pat [lindex $pos 0]
    if {$pat eq ""} {
        set pat *
    }
    set hits {}
    foreach bp $::stub::board_parts {
        if {[string match $pat $bp]} {
            lappend hits $bp
        }
    }
    if {[dict exists $o -latest_file_version] && [llength $hits] > 1} {
        set hits [list [lindex [lsort -dictionary $hits] end]]
    }
    return $hits
}

proc get_ipdefs {args} {
    lassign [::stub::parse get_ipdefs $args] o pos
    set pat [lindex $pos 0]
    if {$pat eq ""} {
        set pat *
    }
    set hits {}
    foreach d $::stub::catalog {
        if {[string match $pat $d]} {
            lappend hits $d
        }
    }
    return $hits
}

proc add_files {args} {
    lassign [::stub::parse add_files $args] o pos
    ::stub::need_project add_files
    set fs [::stub::opt $o -fileset sources_1]
    foreach group $pos {
        foreach f $group {
            if {![file exists $f]} {
                ::stub::fail "add_files: $f does not exist"
            }
            if {[file isdirectory $f] && [dict exists $o -norecurse]} {
                ::stub::fail "add_files: $f is a directory but -norecurse was given"
            }
            switch -- $fs {
                sources_1 { lappend ::stub::sources [file normalize $f] }
                constrs_1 { lappend ::stub::constrs [file normalize $f] }
                default { ::stub::fail "add_files: unknown fileset '$fs'" }
            }
        }
    }
    return {}
}

proc update_compile_order {args} {
    lassign [::stub::parse update_compile_order $args] o pos
    ::stub::need_project update_compile_order
    set fs [::stub::opt $o -fileset sources_1]
    if {$fs ne "sources_1" && $fs ne "sim_1"} {
        ::stub::fail "update_compile_order: unknown fileset '$fs'"
    }
}

# ---- IP models -------------------------------------------------------------------------------
# Known CONFIG parameters and their defaults. Defaults of optional PS ports are 0 on purpose: a
# script must enable every port it uses instead of relying on a preset or a release default.
namespace eval ::stub {
    variable config_defaults [dict create \
        processing_system7 [dict create \
            PCW_USE_M_AXI_GP0 0 PCW_USE_M_AXI_GP1 0 \
            PCW_USE_S_AXI_HP0 0 PCW_USE_S_AXI_HP1 0 PCW_USE_S_AXI_HP2 0 PCW_USE_S_AXI_HP3 0 \
            PCW_S_AXI_HP0_DATA_WIDTH 64 PCW_S_AXI_HP1_DATA_WIDTH 64 \
            PCW_S_AXI_HP2_DATA_WIDTH 64 PCW_S_AXI_HP3_DATA_WIDTH 64 \
            PCW_USE_S_AXI_ACP 0 PCW_USE_S_AXI_GP0 0 PCW_USE_S_AXI_GP1 0 \
            PCW_EN_CLK0_PORT 1 PCW_EN_RST0_PORT 1 PCW_FPGA0_PERIPHERAL_FREQMHZ 50 \
            PCW_USE_FABRIC_INTERRUPT 0 PCW_IRQ_F2P_INTR 0] \
        zynq_ultra_ps_e [dict create \
            PSU__USE__M_AXI_GP0 0 PSU__USE__M_AXI_GP1 0 PSU__USE__M_AXI_GP2 0 \
            PSU__MAXIGP0__DATA_WIDTH 128 PSU__MAXIGP1__DATA_WIDTH 128 PSU__MAXIGP2__DATA_WIDTH 32 \
            PSU__USE__S_AXI_GP0 0 PSU__USE__S_AXI_GP1 0 PSU__USE__S_AXI_GP2 0 \
            PSU__USE__S_AXI_GP3 0 PSU__USE__S_AXI_GP4 0 PSU__USE__S_AXI_GP5 0 PSU__USE__S_AXI_GP6 0 \
            PSU__SAXIGP0__DATA_WIDTH 128 PSU__SAXIGP1__DATA_WIDTH 128 PSU__SAXIGP2__DATA_WIDTH 128 \
            PSU__SAXIGP3__DATA_WIDTH 128 PSU__SAXIGP4__DATA_WIDTH 128 PSU__SAXIGP5__DATA_WIDTH 128 \
            PSU__SAXIGP6__DATA_WIDTH 128 \
            PSU__FPGA_PL0_ENABLE 0 PSU__CRL_APB__PL0_REF_CTRL__FREQMHZ 100 \
            PSU__USE__IRQ0 0 PSU__USE__IRQ1 0] \
        axi_dma [dict create \
            c_include_sg 1 c_sg_length_width 14 c_include_mm2s 1 c_include_s2mm 1 \
            c_m_axis_mm2s_tdata_width 32 c_s_axis_s2mm_tdata_width 32 \
            c_m_axi_mm2s_data_width 32 c_m_axi_s2mm_data_width 32 \
            c_mm2s_burst_size 16 c_s2mm_burst_size 16 c_addr_width 32 \
            c_include_mm2s_dre 0 c_include_s2mm_dre 0 c_micro_dma 0 c_sg_include_stscntrl_strm 0] \
        axi_datamover [dict create \
            c_include_mm2s Full c_include_s2mm Full \
            c_m_axi_mm2s_data_width 32 c_m_axis_mm2s_tdata_width 32 \
            c_m_axi_s2mm_data_width 32 c_s_axis_s2mm_tdata_width 32 \
            c_mm2s_burst_size 16 c_s2mm_burst_size 16 \
            c_mm2s_btt_used 16 c_s2mm_btt_used 16 \
            c_include_mm2s_dre 0 c_include_s2mm_dre 0 \
            c_include_mm2s_stsfifo 1 c_include_s2mm_stsfifo 1 \
            c_mm2s_include_sf 1 c_s2mm_include_sf 1 c_addr_width 32] \
        smartconnect [dict create NUM_SI 1 NUM_MI 1 NUM_CLKS 1] \
        proc_sys_reset [dict create C_EXT_RST_WIDTH 4 C_AUX_RST_WIDTH 4 C_EXT_RESET_HIGH 0 C_AUX_RESET_HIGH 0] \
        xlconcat [dict create NUM_PORTS 2] \
    ]
}

proc ::stub::cfg {cell key} {
    set c [dict get $::stub::cells $cell]
    set conf [dict get $c config]
    if {[dict exists $conf $key]} {
        return [dict get $conf $key]
    }
    return [dict get $::stub::config_defaults [dict get $c ip] $key]
}

# Pins of a cell for its current CONFIG: a list of {name kind dir type width required}.
#   kind pin:  dir I|O, type clk|rst_n|rst|rst_any|intr|data
#   kind intf: dir master|slave, type aximm|axis|ddr|fixedio, width = TDATA bits for axis
proc ::stub::pins_of {cell} {
    set c [dict get $::stub::cells $cell]
    set ip [dict get $c ip]
    set L {}
    switch -- $ip {
        processing_system7 {
            lappend L {DDR intf master ddr 0 0} {FIXED_IO intf master fixedio 0 0}
            foreach n {0 1} {
                if {[cfg $cell PCW_USE_M_AXI_GP$n]} {
                    lappend L [list M_AXI_GP$n intf master aximm 0 1] [list M_AXI_GP${n}_ACLK pin I clk 1 1]
                }
            }
            foreach n {0 1 2 3} {
                if {[cfg $cell PCW_USE_S_AXI_HP$n]} {
                    lappend L [list S_AXI_HP$n intf slave aximm 0 1] [list S_AXI_HP${n}_ACLK pin I clk 1 1]
                }
            }
            if {[cfg $cell PCW_USE_S_AXI_ACP]} {
                lappend L {S_AXI_ACP intf slave aximm 0 1} {S_AXI_ACP_ACLK pin I clk 1 1}
            }
            if {[cfg $cell PCW_EN_CLK0_PORT]} {
                lappend L {FCLK_CLK0 pin O clk 1 0}
            }
            if {[cfg $cell PCW_EN_RST0_PORT]} {
                lappend L {FCLK_RESET0_N pin O rst_n 1 0}
            }
            if {[cfg $cell PCW_USE_FABRIC_INTERRUPT] && [cfg $cell PCW_IRQ_F2P_INTR]} {
                lappend L {IRQ_F2P pin I intr 16 0}
            }
        }
        zynq_ultra_ps_e {
            set masters {{0 M_AXI_HPM0_FPD maxihpm0_fpd_aclk} {1 M_AXI_HPM1_FPD maxihpm1_fpd_aclk} {2 M_AXI_HPM0_LPD maxihpm0_lpd_aclk}}
            foreach m $masters {
                lassign $m n intf clk
                if {[cfg $cell PSU__USE__M_AXI_GP$n]} {
                    lappend L [list $intf intf master aximm 0 1] [list $clk pin I clk 1 1]
                }
            }
            set slaves {{0 S_AXI_HPC0_FPD saxihpc0_fpd_aclk} {1 S_AXI_HPC1_FPD saxihpc1_fpd_aclk}
                        {2 S_AXI_HP0_FPD saxihp0_fpd_aclk} {3 S_AXI_HP1_FPD saxihp1_fpd_aclk}
                        {4 S_AXI_HP2_FPD saxihp2_fpd_aclk} {5 S_AXI_HP3_FPD saxihp3_fpd_aclk}
                        {6 S_AXI_LPD saxi_lpd_aclk}}
            foreach s $slaves {
                lassign $s n intf clk
                if {[cfg $cell PSU__USE__S_AXI_GP$n]} {
                    lappend L [list $intf intf slave aximm 0 1] [list $clk pin I clk 1 1]
                }
            }
            if {[cfg $cell PSU__FPGA_PL0_ENABLE]} {
                lappend L {pl_clk0 pin O clk 1 0}
            }
            lappend L {pl_resetn0 pin O rst_n 1 0}
            if {[cfg $cell PSU__USE__IRQ0]} {
                lappend L {pl_ps_irq0 pin I intr 8 0}
            }
            if {[cfg $cell PSU__USE__IRQ1]} {
                lappend L {pl_ps_irq1 pin I intr 8 0}
            }
        }
        axi_dma {
            lappend L {S_AXI_LITE intf slave aximm 0 1} {s_axi_lite_aclk pin I clk 1 1} {axi_resetn pin I rst_n 1 1}
            if {[cfg $cell c_include_sg]} {
                lappend L {M_AXI_SG intf master aximm 0 1} {m_axi_sg_aclk pin I clk 1 1}
            }
            if {[cfg $cell c_include_mm2s]} {
                lappend L {M_AXI_MM2S intf master aximm 0 1} {m_axi_mm2s_aclk pin I clk 1 1} \
                    [list M_AXIS_MM2S intf master axis [cfg $cell c_m_axis_mm2s_tdata_width] 1] \
                    {mm2s_introut pin O intr 1 0} {mm2s_prmry_reset_out_n pin O rst_n 1 0}
            }
            if {[cfg $cell c_include_s2mm]} {
                lappend L {M_AXI_S2MM intf master aximm 0 1} {m_axi_s2mm_aclk pin I clk 1 1} \
                    [list S_AXIS_S2MM intf slave axis [cfg $cell c_s_axis_s2mm_tdata_width] 1] \
                    {s2mm_introut pin O intr 1 0} {s2mm_prmry_reset_out_n pin O rst_n 1 0}
            }
        }
        axi_datamover {
            # PG022 port names. The status stream is required here although Vivado would let it
            # dangle: with nobody taking status words the DataMover stops after its status FIFO
            # fills, so an unconnected status stream is a hang on the board.
            set cmdw [expr {32 + [cfg $cell c_addr_width] + 8}]
            if {[cfg $cell c_include_mm2s] ne "Omit"} {
                lappend L {M_AXI_MM2S intf master aximm 0 1} \
                    [list M_AXIS_MM2S intf master axis [cfg $cell c_m_axis_mm2s_tdata_width] 1] \
                    [list S_AXIS_MM2S_CMD intf slave axis $cmdw 1] \
                    {M_AXIS_MM2S_STS intf master axis 8 1} \
                    {m_axi_mm2s_aclk pin I clk 1 1} {m_axi_mm2s_aresetn pin I rst_n 1 1} \
                    {m_axis_mm2s_cmdsts_aclk pin I clk 1 1} {m_axis_mm2s_cmdsts_aresetn pin I rst_n 1 1} \
                    {mm2s_err pin O data 1 0}
            }
            if {[cfg $cell c_include_s2mm] ne "Omit"} {
                lappend L {M_AXI_S2MM intf master aximm 0 1} \
                    [list S_AXIS_S2MM intf slave axis [cfg $cell c_s_axis_s2mm_tdata_width] 1] \
                    [list S_AXIS_S2MM_CMD intf slave axis $cmdw 1] \
                    {M_AXIS_S2MM_STS intf master axis 8 1} \
                    {m_axi_s2mm_aclk pin I clk 1 1} {m_axi_s2mm_aresetn pin I rst_n 1 1} \
                    {m_axis_s2mm_cmdsts_awclk pin I clk 1 1} {m_axis_s2mm_cmdsts_aresetn pin I rst_n 1 1} \
                    {s2mm_err pin O data 1 0}
            }
        }
        smartconnect {
            for {set i 0} {$i < [cfg $cell NUM_SI]} {incr i} {
                lappend L [list [format S%02d_AXI $i] intf slave aximm 0 1]
            }
            for {set i 0} {$i < [cfg $cell NUM_MI]} {incr i} {
                lappend L [list [format M%02d_AXI $i] intf master aximm 0 1]
            }
            lappend L {aclk pin I clk 1 1} {aresetn pin I rst_n 1 1}
        }
        proc_sys_reset {
            lappend L {slowest_sync_clk pin I clk 1 1} {ext_reset_in pin I rst_any 1 1} \
                {aux_reset_in pin I rst_any 1 0} {mb_debug_sys_rst pin I rst 1 0} \
                {dcm_locked pin I data 1 0} {mb_reset pin O rst 1 0} \
                {bus_struct_reset pin O rst 1 0} {peripheral_reset pin O rst 1 0} \
                {interconnect_aresetn pin O rst_n 1 0} {peripheral_aresetn pin O rst_n 1 0}
        }
        xlconcat {
            for {set i 0} {$i < [cfg $cell NUM_PORTS]} {incr i} {
                lappend L [list In$i pin I data 1 0]
            }
            lappend L {dout pin O data 1 0}
        }
        module {
            set L [::stub::module_pins [dict get $c ref]]
        }
        default {
            fail "internal: no pin model for $ip"
        }
    }
    return $L
}

# Vivado infers interfaces of a module reference from port names; this mirrors the HLS-style
# names the generated wrapper uses (UG994, "Inferring interfaces").
proc ::stub::module_pins {ref} {
    set ports [dict get $::stub::modules $ref]
    set L {}
    set groups [dict create]
    foreach p $ports {
        lassign $p name dir width
        if {[regexp {^(s|m)_axis_([A-Za-z0-9_]+)_(tdata|tvalid|tready|tlast|tkeep|tstrb|tuser)$} $name -> sm bus sig]} {
            dict set groups ${sm}_axis_$bus $sig [list $dir $width]
        } elseif {[regexp {^s_axi_([A-Za-z0-9]+)_(awaddr|awvalid|awready|awprot|wdata|wstrb|wvalid|wready|bresp|bvalid|bready|araddr|arvalid|arready|arprot|rdata|rresp|rvalid|rready)$} $name -> bus sig]} {
            dict set groups s_axi_$bus $sig [list $dir $width]
        } elseif {$name eq "ap_clk"} {
            lappend L [list ap_clk pin [expr {$dir eq "input" ? "I" : "O"}] clk 1 1]
        } elseif {$name eq "ap_rst_n"} {
            lappend L [list ap_rst_n pin [expr {$dir eq "input" ? "I" : "O"}] rst_n 1 1]
        } elseif {$name eq "interrupt"} {
            lappend L [list interrupt pin [expr {$dir eq "input" ? "I" : "O"}] intr $width 0]
        } else {
            lappend L [list $name pin [expr {$dir eq "input" ? "I" : "O"}] data $width 0]
        }
    }
    dict for {bus sigs} $groups {
        if {[string match *_axis_* $bus]} {
            set slave [string match s_* $bus]
            # TLAST is optional (a command stream has none); TDATA, TVALID, TREADY are not.
            foreach {sig fwd} {tdata 1 tvalid 1 tready 0 tlast 1} {
                if {![dict exists $sigs $sig]} {
                    if {$sig eq "tlast"} {
                        continue
                    }
                    fail "module $ref: stream $bus lacks ${bus}_$sig"
                }
                set want [expr {($fwd == $slave) ? "input" : "output"}]
                if {[lindex [dict get $sigs $sig] 0] ne $want} {
                    fail "module $ref: ${bus}_$sig should be an $want"
                }
            }
            if {[dict exists $sigs tkeep] && [lindex [dict get $sigs tkeep] 1] * 8 != [lindex [dict get $sigs tdata] 1]} {
                fail "module $ref: ${bus}_tkeep must have one bit per TDATA byte"
            }
            lappend L [list $bus intf [expr {$slave ? "slave" : "master"}] axis [lindex [dict get $sigs tdata] 1] 1 [dict exists $sigs tkeep]]
        } else {
            foreach {sig want} {awaddr input awvalid input awready output wdata input wstrb input
                                wvalid input wready output bresp output bvalid output bready input
                                araddr input arvalid input arready output rdata output rresp output
                                rvalid output rready input} {
                if {![dict exists $sigs $sig]} {
                    fail "module $ref: AXI-Lite bus $bus lacks ${bus}_$sig"
                }
                if {[lindex [dict get $sigs $sig] 0] ne $want} {
                    fail "module $ref: ${bus}_$sig should be an $want"
                }
            }
            if {[lindex [dict get $sigs wdata] 1] != 32 || [lindex [dict get $sigs rdata] 1] != 32} {
                fail "module $ref: AXI-Lite bus $bus must have 32-bit data"
            }
            lappend L [list $bus intf slave aximm 0 1]
        }
    }
    return $L
}

# ---- block design ----------------------------------------------------------------------------
proc ::stub::need_bd {what} {
    if {$::stub::bd eq ""} {
        fail "$what: no open block design (create_bd_design first)"
    }
}

proc ::stub::bd_dir {} {
    set p $::stub::proj
    return [file join [dict get $p dir] "[dict get $p name].srcs" sources_1 bd $::stub::bd]
}
proc ::stub::gen_dir {} {
    set p $::stub::proj
    return [file join [dict get $p dir] "[dict get $p name].gen" sources_1 bd $::stub::bd]
}

proc create_bd_design {args} {
    lassign [::stub::parse create_bd_design $args] o pos
    ::stub::need_project create_bd_design
    if {$::stub::bd ne ""} {
        ::stub::fail "create_bd_design: the stub models one block design; $::stub::bd already exists"
    }
    set ::stub::bd [lindex $pos 0]
    file mkdir [::stub::bd_dir]
    set f [open [file join [::stub::bd_dir] $::stub::bd.bd] w]
    puts $f "stub block design"
    close $f
    return $::stub::bd
}

# Normalises "/cell", "cell", "/cell/pin", "cell/pin" to a list of path elements.
proc ::stub::split_path {obj} {
    return [lsearch -all -inline -not -exact [split $obj /] {}]
}

proc create_bd_cell {args} {
    lassign [::stub::parse create_bd_cell $args] o pos
    ::stub::need_bd create_bd_cell
    set name [lindex $pos 0]
    if {![regexp {^[A-Za-z][A-Za-z0-9_]*$} $name]} {
        ::stub::fail "create_bd_cell: bad cell name '$name'"
    }
    if {[dict exists $::stub::cells $name]} {
        ::stub::fail "create_bd_cell: cell $name already exists"
    }
    set type [::stub::opt $o -type]
    switch -- $type {
        ip {
            set vlnv [::stub::opt $o -vlnv]
            if {[lsearch -exact $::stub::catalog $vlnv] < 0} {
                ::stub::fail "create_bd_cell: VLNV '$vlnv' is not in the IP catalog (known: $::stub::catalog)"
            }
            if {[dict exists $o -reference]} {
                ::stub::fail "create_bd_cell: -reference is for -type module"
            }
            set ip [lindex [split $vlnv :] 2]
            dict set ::stub::cells $name [dict create ip $ip vlnv $vlnv config [dict create] preset 0]
        }
        module {
            set ref [::stub::opt $o -reference]
            if {![dict exists $::stub::modules $ref]} {
                ::stub::fail "create_bd_cell: module '$ref' is not defined by any source in the project"
            }
            if {[llength $::stub::sources] == 0} {
                ::stub::fail "create_bd_cell: module reference '$ref' but no HDL sources were added"
            }
            if {[dict exists $o -vlnv]} {
                ::stub::fail "create_bd_cell: -vlnv is for -type ip"
            }
            dict set ::stub::cells $name [dict create ip module ref $ref config [dict create] preset 0]
            ::stub::pins_of $name
        }
        default {
            ::stub::fail "create_bd_cell: -type must be ip or module (hier is not modelled), got '$type'"
        }
    }
    return /$name
}

proc ::stub::find_pin {obj kind what} {
    set parts [split_path $obj]
    if {[llength $parts] != 2} {
        fail "$what: '$obj' is not a cell/pin path"
    }
    lassign $parts cell pin
    if {[string first * $obj] >= 0} {
        fail "$what: patterns are not modelled; use exact names ('$obj')"
    }
    if {![dict exists $::stub::cells $cell]} {
        fail "$what: no cell '$cell' (pin '$obj')"
    }
    foreach p [pins_of $cell] {
        if {[lindex $p 0] eq $pin && [lindex $p 1] eq $kind} {
            return $p
        }
    }
    set have {}
    foreach p [pins_of $cell] {
        if {[lindex $p 1] eq $kind} {
            lappend have [lindex $p 0]
        }
    }
    fail "$what: cell $cell ([dict get $::stub::cells $cell ip]) has no $kind '$pin' with its current CONFIG (has: $have)"
}

proc get_bd_cells {args} {
    lassign [::stub::parse get_bd_cells $args] o pos
    ::stub::need_bd get_bd_cells
    set name [lindex [::stub::split_path [lindex $pos 0]] 0]
    if {![dict exists $::stub::cells $name]} {
        if {[dict exists $o -quiet]} {
            return {}
        }
        ::stub::fail "get_bd_cells: no cell '[lindex $pos 0]'"
    }
    return /$name
}

proc get_bd_pins {args} {
    lassign [::stub::parse get_bd_pins $args] o pos
    ::stub::need_bd get_bd_pins
    if {[dict exists $o -quiet]} {
        if {[catch {::stub::find_pin [lindex $pos 0] pin get_bd_pins}]} {
            return {}
        }
    }
    ::stub::find_pin [lindex $pos 0] pin get_bd_pins
    return /[join [::stub::split_path [lindex $pos 0]] /]
}

proc get_bd_intf_pins {args} {
    lassign [::stub::parse get_bd_intf_pins $args] o pos
    ::stub::need_bd get_bd_intf_pins
    ::stub::find_pin [lindex $pos 0] intf get_bd_intf_pins
    return /[join [::stub::split_path [lindex $pos 0]] /]
}

proc ::stub::check_config_value {cell key value} {
    set ip [dict get $::stub::cells $cell ip]
    set int [string is integer -strict $value]
    if {$ip eq "axi_datamover"} {
        switch -glob -- $key {
            c_include_mm2s - c_include_s2mm {
                if {[lsearch -exact {Full Basic Omit} $value] < 0} {
                    fail "set_property CONFIG.$key on $cell: channel type is Full, Basic or Omit, got '$value'"
                }
                return
            }
            c_mm2s_btt_used - c_s2mm_btt_used {
                if {!$int || $value < 8 || $value > 23} {
                    fail "set_property CONFIG.$key on $cell: BTT width is 8..23 bits, got '$value'"
                }
                return
            }
            c_include_*_dre - c_include_*_stsfifo - c_*_include_sf {
                # Boolean parameters: Vivado and AMD's scripts write true/false.
                if {[lsearch -exact {true false} $value] < 0} {
                    fail "set_property CONFIG.$key on $cell: boolean, write true or false, got '$value'"
                }
                return
            }
        }
    }
    switch -glob -- $key {
        PCW_USE_* - PCW_EN_* - PCW_IRQ_F2P_INTR - PSU__USE__* - PSU__FPGA_PL0_ENABLE - c_include_* - c_micro_dma - C_EXT_RESET_HIGH - C_AUX_RESET_HIGH {
            if {$value ne "0" && $value ne "1"} {
                fail "set_property CONFIG.$key on $cell: must be 0 or 1, got '$value'"
            }
        }
        PCW_S_AXI_HP*_DATA_WIDTH {
            if {[lsearch -exact {32 64} $value] < 0} {
                fail "set_property CONFIG.$key on $cell: HP port width is 32 or 64, got '$value'"
            }
        }
        PSU__SAXIGP*__DATA_WIDTH - PSU__MAXIGP*__DATA_WIDTH {
            if {[lsearch -exact {32 64 128} $value] < 0} {
                fail "set_property CONFIG.$key on $cell: width is 32, 64 or 128, got '$value'"
            }
        }
        *FREQMHZ {
            if {![string is double -strict $value] || $value <= 0 || $value > 500} {
                fail "set_property CONFIG.$key on $cell: '$value' is not a frequency in MHz"
            }
        }
        c_m_axis_mm2s_tdata_width - c_s_axis_s2mm_tdata_width {
            if {[lsearch -exact {8 16 32 64 128 256 512 1024} $value] < 0} {
                fail "set_property CONFIG.$key on $cell: stream width must be 8..1024, a power of two"
            }
        }
        c_m_axi_mm2s_data_width - c_m_axi_s2mm_data_width {
            if {[lsearch -exact {32 64 128 256 512 1024} $value] < 0} {
                fail "set_property CONFIG.$key on $cell: memory-map width must be 32..1024, a power of two"
            }
        }
        c_sg_length_width {
            if {!$int || $value < 8 || $value > 26} {
                fail "set_property CONFIG.$key on $cell: buffer length width is 8..26"
            }
        }
        c_mm2s_burst_size - c_s2mm_burst_size {
            if {[lsearch -exact {2 4 8 16 32 64 128 256} $value] < 0} {
                fail "set_property CONFIG.$key on $cell: burst size must be 2..256, a power of two"
            }
        }
        c_addr_width {
            if {!$int || $value < 32 || $value > 64} {
                fail "set_property CONFIG.$key on $cell: address width is 32..64"
            }
        }
        NUM_SI - NUM_MI {
            if {!$int || $value < 1 || $value > 16} {
                fail "set_property CONFIG.$key on $cell: must be 1..16"
            }
        }
        NUM_PORTS {
            if {!$int || $value < 1 || $value > 128} {
                fail "set_property CONFIG.$key on $cell: must be 1..128"
            }
        }
    }
}

proc ::stub::set_cell_config {cell key value} {
    set ip [dict get $::stub::cells $cell ip]
    if {![string match CONFIG.* $key]} {
        fail "set_property: the stub models only CONFIG.* on cells, not '$key'"
    }
    set k [string range $key 7 end]
    if {[string match *.VALUE_SRC $k]} {
        set base [string range $k 0 end-10]
        if {$ip eq "module" || ![dict exists $::stub::config_defaults $ip $base]} {
            fail "set_property: $key names no CONFIG parameter of $cell ($ip)"
        }
        if {[lsearch -exact {USER DEFAULT PROPAGATED CONSTANT} $value] < 0} {
            fail "set_property $key: VALUE_SRC is USER, DEFAULT, PROPAGATED or CONSTANT, got '$value'"
        }
        dict set ::stub::cells $cell value_src $base $value
        return
    }
    if {$ip eq "module" || ![dict exists $::stub::config_defaults $ip $k]} {
        fail "set_property: $key is not a known CONFIG parameter of $cell ($ip)"
    }
    # Re-configuring a cell can remove pins that are already wired; Vivado would drop the nets.
    check_config_value $cell $k $value
    dict set ::stub::cells $cell config $k $value
}

proc set_property {args} {
    lassign [::stub::parse set_property $args] o pos
    if {[dict exists $o -dict]} {
        if {[llength $pos] != 1} {
            ::stub::fail "set_property -dict: expected exactly one object argument, got [llength $pos]"
        }
        set pairs [dict get $o -dict]
        if {[llength $pairs] % 2} {
            ::stub::fail "set_property -dict: odd-length name/value list"
        }
        set objs [lindex $pos 0]
    } else {
        if {[llength $pos] != 3} {
            ::stub::fail "set_property: expected name value objects, got [llength $pos] argument(s)"
        }
        set pairs [lrange $pos 0 1]
        set objs [lindex $pos 2]
    }
    if {[llength $objs] == 0} {
        ::stub::fail "set_property: no objects"
    }
    foreach obj $objs {
        foreach {k v} $pairs {
            set parts [::stub::split_path $obj]
            if {[string match /* $obj] && [llength $parts] == 1 && [dict exists $::stub::cells [lindex $parts 0]]} {
                ::stub::set_cell_config [lindex $parts 0] $k $v
            } elseif {[dict exists $::stub::proj name] && $obj eq [dict get $::stub::proj name]} {
                if {$k ne "board_part"} {
                    ::stub::fail "set_property: the stub models only board_part on the project, not '$k'"
                }
                if {[lsearch -exact $::stub::board_parts $v] < 0} {
                    ::stub::fail "set_property board_part: '$v' is not an installed board part"
                }
                dict set ::stub::proj board_part $v
            } elseif {$obj eq "sources_1"} {
                if {$k ne "top"} {
                    ::stub::fail "set_property: the stub models only top on sources_1, not '$k'"
                }
                set ok 0
                foreach f $::stub::sources {
                    if {[file rootname [file tail $f]] eq $v} {
                        set ok 1
                    }
                }
                if {!$ok} {
                    ::stub::fail "set_property top: no source file defines '$v'"
                }
                set ::stub::top $v
            } else {
                ::stub::fail "set_property: '$obj' is not a cell, the project or a fileset the stub knows"
            }
        }
    }
    return {}
}

proc apply_bd_automation {args} {
    lassign [::stub::parse apply_bd_automation $args] o pos
    ::stub::need_bd apply_bd_automation
    set rule [::stub::opt $o -rule]
    set cell [lindex [::stub::split_path [lindex $pos 0]] 0]
    if {![dict exists $::stub::cells $cell]} {
        ::stub::fail "apply_bd_automation: no cell '[lindex $pos 0]'"
    }
    set ip [dict get $::stub::cells $cell ip]
    set config [::stub::opt $o -config]
    if {[llength $config] % 2} {
        ::stub::fail "apply_bd_automation: -config must be a key/value list"
    }
    switch -- $rule {
        xilinx.com:bd_rule:processing_system7 {
            set allowed {make_external apply_board_preset Master Slave}
            set want processing_system7
        }
        xilinx.com:bd_rule:zynq_ultra_ps_e {
            set allowed {apply_board_preset}
            set want zynq_ultra_ps_e
        }
        default {
            ::stub::fail "apply_bd_automation: rule '$rule' is not modelled"
        }
    }
    if {$ip ne $want} {
        ::stub::fail "apply_bd_automation: rule $rule applies to $want, not $cell ($ip)"
    }
    foreach {k v} $config {
        if {[lsearch -exact $allowed $k] < 0} {
            ::stub::fail "apply_bd_automation: rule $rule has no config key '$k' (known: $allowed)"
        }
        if {$k eq "apply_board_preset"} {
            if {$v ne "0" && $v ne "1"} {
                ::stub::fail "apply_bd_automation: apply_board_preset must be 0 or 1"
            }
            if {$v && [dict get $::stub::proj board_part] eq ""} {
                ::stub::fail "apply_bd_automation: apply_board_preset 1 but the project has no board_part"
            }
            dict set ::stub::cells $cell preset $v
        }
        if {$k eq "make_external"} {
            foreach intf [split $v ,] {
                set intf [string trim $intf]
                ::stub::find_pin $cell/$intf intf apply_bd_automation
                dict set ::stub::intf_peer /$cell/$intf external
            }
        }
    }
    return {}
}

proc connect_bd_net {args} {
    lassign [::stub::parse connect_bd_net $args] o pos
    ::stub::need_bd connect_bd_net
    set objs [concat {*}$pos]
    if {[llength $objs] < 2} {
        ::stub::fail "connect_bd_net: needs at least two pins, got '$objs'"
    }
    set merged {}
    set members {}
    foreach obj $objs {
        set p [::stub::find_pin $obj pin connect_bd_net]
        set path /[join [::stub::split_path $obj] /]
        if {[dict exists $::stub::net_of $path]} {
            set n [dict get $::stub::net_of $path]
            if {[lsearch -exact $merged $n] < 0} {
                lappend merged $n
            }
        } else {
            lappend members $path
        }
    }
    foreach n $merged {
        foreach m [dict get $::stub::net_pins $n] {
            if {[lsearch -exact $members $m] < 0} {
                lappend members $m
            }
        }
        dict unset ::stub::net_pins $n
    }
    set drivers {}
    set types {}
    foreach m $members {
        lassign [::stub::split_path $m] cell pin
        set p [::stub::find_pin $m pin connect_bd_net]
        if {[lindex $p 2] eq "O"} {
            lappend drivers $m
        }
        lappend types [lindex $p 3]
    }
    if {[llength $drivers] > 1} {
        ::stub::fail "connect_bd_net: net would have several drivers: $drivers"
    }
    set t [lsort -unique $types]
    if {[lsearch -exact $t clk] >= 0 && [llength $t] > 1} {
        ::stub::fail "connect_bd_net: clock pins mixed with [lsearch -all -inline -not -exact $t clk] pins: $members"
    }
    if {[lsearch -exact $t rst_n] >= 0 && [lsearch -exact $t rst] >= 0} {
        ::stub::fail "connect_bd_net: active-low and active-high resets in one net: $members"
    }
    set id [incr ::stub::next_net]
    dict set ::stub::net_pins $id $members
    foreach m $members {
        dict set ::stub::net_of $m $id
    }
    return net$id
}

proc connect_bd_intf_net {args} {
    lassign [::stub::parse connect_bd_intf_net $args] o pos
    ::stub::need_bd connect_bd_intf_net
    set ends {}
    foreach obj $pos {
        if {[llength $obj] != 1} {
            ::stub::fail "connect_bd_intf_net: each end must be one interface pin, got '$obj'"
        }
        set p [::stub::find_pin $obj intf connect_bd_intf_net]
        set path /[join [::stub::split_path $obj] /]
        if {[dict exists $::stub::intf_peer $path]} {
            ::stub::fail "connect_bd_intf_net: $path is already connected to [dict get $::stub::intf_peer $path]"
        }
        lappend ends [list $path {*}$p]
    }
    lassign $ends a b
    if {[lindex $a 0] eq [lindex $b 0]} {
        ::stub::fail "connect_bd_intf_net: cannot connect [lindex $a 0] to itself"
    }
    if {[lsort [list [lindex $a 3] [lindex $b 3]]] ne {master slave}} {
        ::stub::fail "connect_bd_intf_net: needs one master and one slave: [lindex $a 0] is [lindex $a 3], [lindex $b 0] is [lindex $b 3]"
    }
    if {[lindex $a 4] ne [lindex $b 4]} {
        ::stub::fail "connect_bd_intf_net: [lindex $a 0] is [lindex $a 4] but [lindex $b 0] is [lindex $b 4]"
    }
    if {[lindex $a 4] eq "axis" && [lindex $a 5] != [lindex $b 5]} {
        ::stub::fail "connect_bd_intf_net: stream widths differ: [lindex $a 0] TDATA [lindex $a 5] bits, [lindex $b 0] TDATA [lindex $b 5] bits"
    }
    # The DMA's S2MM stream takes TKEEP; a module stream without it leaves the bytes' validity
    # to Vivado's tie-off.
    foreach {x y} [list $a $b $b $a] {
        if {[string match */S_AXIS_S2MM [lindex $x 0]] && [lindex $y 4] eq "axis"} {
            set cell [lindex [::stub::split_path [lindex $y 0]] 0]
            if {[dict get $::stub::cells $cell ip] eq "module" && ![lindex $y 7]} {
                ::stub::fail "connect_bd_intf_net: [lindex $y 0] has no TKEEP for the DMA's S2MM channel"
            }
        }
    }
    dict set ::stub::intf_peer [lindex $a 0] [lindex $b 0]
    dict set ::stub::intf_peer [lindex $b 0] [lindex $a 0]
    return intf_net
}

proc get_bd_addr_spaces {args} {
    lassign [::stub::parse get_bd_addr_spaces $args] o pos
    ::stub::need_bd get_bd_addr_spaces
    lassign [::stub::split_path [lindex $pos 0]] cell space
    if {![dict exists $::stub::cells $cell] || [lsearch -exact {processing_system7 zynq_ultra_ps_e} [dict get $::stub::cells $cell ip]] < 0 || $space ne "Data"} {
        ::stub::fail "get_bd_addr_spaces: '[lindex $pos 0]' is not a PS address space (<ps cell>/Data)"
    }
    return /$cell/Data
}

# Only the slave segment of a module's AXI4-Lite interface is modelled: `reg0`, the block
# Vivado infers for an RTL module's s_axi interface.
proc get_bd_addr_segs {args} {
    lassign [::stub::parse get_bd_addr_segs $args] o pos
    ::stub::need_bd get_bd_addr_segs
    if {![dict exists $o -of_objects] || [llength $pos]} {
        ::stub::fail "get_bd_addr_segs: the stub models only -of_objects <interface pin>"
    }
    set segs {}
    foreach obj [dict get $o -of_objects] {
        set p [::stub::find_pin $obj intf get_bd_addr_segs]
        lassign [::stub::split_path $obj] cell pin
        if {[dict get $::stub::cells $cell ip] ne "module" || [lindex $p 2] ne "slave" || [lindex $p 3] ne "aximm"} {
            ::stub::fail "get_bd_addr_segs: $obj is not a module's AXI slave interface"
        }
        lappend segs /$cell/$pin/reg0
    }
    return $segs
}

proc ::stub::range_bytes {r} {
    if {[regexp {^([0-9]+)([KMG]?)$} $r -> n unit]} {
        return [expr {$n * [dict get {"" 1 K 1024 M 1048576 G 1073741824} $unit]}]
    }
    if {[string is wideinteger -strict $r]} {
        return $r
    }
    fail "assign_bd_address: -range '$r' is not a size (e.g. 64K or 0x10000)"
}

proc assign_bd_address {args} {
    lassign [::stub::parse assign_bd_address $args] o pos
    ::stub::need_bd assign_bd_address
    if {[dict exists $o -range]} {
        set bytes [::stub::range_bytes [dict get $o -range]]
        if {$bytes < 4096 || ($bytes & ($bytes - 1))} {
            ::stub::fail "assign_bd_address: -range must be a power of two of at least 4K, got [dict get $o -range]"
        }
        if {![dict exists $o -target_address_space] || [llength $pos] != 1 || [llength [lindex $pos 0]] == 0} {
            ::stub::fail "assign_bd_address -range: needs -target_address_space and the segments to place"
        }
        foreach seg [lindex $pos 0] {
            dict set ::stub::ranges $seg $bytes
        }
        return {}
    }
    dict set ::stub::bd_state addressed 1
    return {}
}

proc validate_bd_design {args} {
    lassign [::stub::parse validate_bd_design $args] o pos
    ::stub::need_bd validate_bd_design
    set problems {}
    dict for {cell c} $::stub::cells {
        foreach p [::stub::pins_of $cell] {
            lassign $p name kind dir type width required
            set path /$cell/$name
            if {$kind eq "intf"} {
                if {$required && ![dict exists $::stub::intf_peer $path]} {
                    lappend problems "interface $path is not connected"
                }
            } elseif {$required && $dir eq "I"} {
                if {![dict exists $::stub::net_of $path]} {
                    lappend problems "input pin $path ($type) is not connected"
                } else {
                    set driven 0
                    foreach m [dict get $::stub::net_pins [dict get $::stub::net_of $path]] {
                        if {[lindex [::stub::find_pin $m pin validate_bd_design] 2] eq "O"} {
                            set driven 1
                        }
                    }
                    if {!$driven} {
                        lappend problems "input pin $path has no driver"
                    }
                }
            }
        }
        if {[dict get $c ip] eq "axi_datamover"} {
            # PG022: the stream may not be wider than the memory map.
            foreach {st mm} {c_m_axis_mm2s_tdata_width c_m_axi_mm2s_data_width c_s_axis_s2mm_tdata_width c_m_axi_s2mm_data_width} {
                if {[::stub::cfg $cell $st] > [::stub::cfg $cell $mm]} {
                    lappend problems "$cell: $st ([::stub::cfg $cell $st]) exceeds $mm ([::stub::cfg $cell $mm])"
                }
            }
        }
        if {[dict get $c ip] eq "axi_dma"} {
            foreach {s m} {c_m_axis_mm2s_tdata_width c_m_axi_mm2s_data_width c_s_axis_s2mm_tdata_width c_m_axi_s2mm_data_width} {
                if {[::stub::cfg $cell $s] > [::stub::cfg $cell $m]} {
                    lappend problems "$cell: $s ([::stub::cfg $cell $s]) exceeds $m ([::stub::cfg $cell $m])"
                }
            }
        }
    }
    dict for {cell c} $::stub::cells {
        if {[dict get $c ip] eq "module" && ![dict exists $::stub::ranges /$cell/s_axi_control/reg0]} {
            lappend problems "$cell/s_axi_control has no explicit address range (assign_bd_address -range)"
        }
    }
    if {![dict get $::stub::bd_state addressed]} {
        lappend problems "no addresses assigned (assign_bd_address)"
    }
    if {[llength $problems]} {
        ::stub::fail "validate_bd_design:\n  [join $problems "\n  "]"
    }
    dict set ::stub::bd_state validated 1
    return {}
}

proc save_bd_design {args} {
    lassign [::stub::parse save_bd_design $args] o pos
    ::stub::need_bd save_bd_design
    dict set ::stub::bd_state saved 1
    return {}
}

proc get_files {args} {
    lassign [::stub::parse get_files $args] o pos
    ::stub::need_project get_files
    set want [lindex $pos 0]
    if {$::stub::bd ne "" && $want eq "$::stub::bd.bd"} {
        return [file join [::stub::bd_dir] $::stub::bd.bd]
    }
    foreach f [concat $::stub::sources $::stub::constrs] {
        if {[file tail $f] eq $want} {
            return $f
        }
    }
    if {[dict exists $o -quiet]} {
        return {}
    }
    ::stub::fail "get_files: no file '$want' in the project"
}

proc ::stub::need_bd_file {what f} {
    need_bd $what
    if {$f ne [file join [bd_dir] $::stub::bd.bd]} {
        fail "$what: '$f' is not the block design file (use get_files $::stub::bd.bd)"
    }
    if {![dict get $::stub::bd_state validated]} {
        fail "$what: block design not validated"
    }
    if {![dict get $::stub::bd_state saved]} {
        fail "$what: block design not saved"
    }
}

proc generate_target {args} {
    lassign [::stub::parse generate_target $args] o pos
    lassign $pos what f
    if {[lsearch -exact {all synthesis simulation implementation instantiation_template} $what] < 0} {
        ::stub::fail "generate_target: unknown target '$what'"
    }
    ::stub::need_bd_file generate_target $f
    set d [file join [::stub::gen_dir] hw_handoff]
    file mkdir $d
    set h [open [file join $d $::stub::bd.hwh] w]
    puts $h "<stub hwh/>"
    close $h
    return {}
}

proc make_wrapper {args} {
    lassign [::stub::parse make_wrapper $args] o pos
    set f [::stub::opt $o -files]
    ::stub::need_bd_file make_wrapper $f
    if {![dict exists $o -top]} {
        ::stub::fail "make_wrapper: without -top the wrapper cannot be the design top"
    }
    set d [file join [::stub::gen_dir] hdl]
    file mkdir $d
    set w [file join $d ${::stub::bd}_wrapper.v]
    set h [open $w w]
    puts $h "// stub wrapper"
    close $h
    return $w
}

proc get_runs {args} {
    lassign [::stub::parse get_runs $args] o pos
    ::stub::need_project get_runs
    set r [lindex $pos 0]
    if {![dict exists $::stub::runs $r]} {
        ::stub::fail "get_runs: no run '$r'"
    }
    return $r
}

proc ::stub::run_dir {r} {
    set p $::stub::proj
    return [file join [dict get $p dir] "[dict get $p name].runs" $r]
}

proc launch_runs {args} {
    lassign [::stub::parse launch_runs $args] o pos
    ::stub::need_project launch_runs
    set jobs [::stub::opt $o -jobs 1]
    if {![string is integer -strict $jobs] || $jobs < 1} {
        ::stub::fail "launch_runs: -jobs needs a positive integer, got '$jobs'"
    }
    foreach r $pos {
        if {![dict exists $::stub::runs $r]} {
            ::stub::fail "launch_runs: no run '$r'"
        }
        if {$::stub::top eq ""} {
            ::stub::fail "launch_runs: no top module set"
        }
        if {$r eq "impl_1"} {
            if {![dict get $::stub::runs synth_1 waited]} {
                ::stub::fail "launch_runs impl_1: synth_1 has not finished"
            }
            set step [::stub::opt $o -to_step]
            if {$step ne "" && [lsearch -exact {opt_design power_opt_design place_design phys_opt_design route_design write_bitstream} $step] < 0} {
                ::stub::fail "launch_runs: unknown -to_step '$step'"
            }
            if {$step eq "write_bitstream"} {
                file mkdir [::stub::run_dir impl_1]
                set h [open [file join [::stub::run_dir impl_1] $::stub::top.bit] w]
                puts $h "stub bitstream"
                close $h
                dict set ::stub::runs impl_1 bitstream 1
            }
        } elseif {[dict exists $o -to_step]} {
            ::stub::fail "launch_runs: -to_step is for implementation runs"
        }
        dict set ::stub::runs $r launched 1
    }
    return {}
}

proc wait_on_run {args} {
    lassign [::stub::parse wait_on_run $args] o pos
    set r [lindex $pos 0]
    if {![dict exists $::stub::runs $r] || ![dict get $::stub::runs $r launched]} {
        ::stub::fail "wait_on_run: run '$r' was not launched"
    }
    dict set ::stub::runs $r waited 1
    return {}
}

proc get_property {args} {
    lassign [::stub::parse get_property $args] o pos
    lassign $pos name obj
    if {[dict exists $::stub::runs $obj]} {
        set run [dict get $::stub::runs $obj]
        switch -- $name {
            PROGRESS {
                return [expr {[dict get $run waited] ? "100%" : "0%"}]
            }
            STATUS {
                if {![dict get $run waited]} {
                    return "Not started"
                }
                if {$obj eq "impl_1"} {
                    return [expr {[dict get $run bitstream] ? "write_bitstream Complete!" : "route_design Complete!"}]
                }
                return "synth_design Complete!"
            }
            DIRECTORY {
                return [::stub::run_dir $obj]
            }
            STATS.WNS - STATS.WHS {
                if {$obj ne "impl_1" || ![dict get $run waited]} {
                    ::stub::fail "get_property $name: only a finished implementation run has timing"
                }
                return [dict get $::stub::timing [string range $name 6 end]]
            }
        }
    }
    ::stub::fail "get_property: the stub models PROGRESS/STATUS/DIRECTORY of runs only, not '$name' of '$obj'"
}

# ---- non-project out-of-context synthesis ----------------------------------------------------
proc read_verilog {args} {
    lassign [::stub::parse read_verilog $args] o pos
    foreach f [lindex $pos 0] {
        if {![file exists $f]} {
            ::stub::fail "read_verilog: $f does not exist"
        }
        dict lappend ::stub::ooc verilog $f
    }
}

proc read_xdc {args} {
    lassign [::stub::parse read_xdc $args] o pos
    set f [lindex $pos 0]
    if {![file exists $f]} {
        ::stub::fail "read_xdc: $f does not exist"
    }
    set mode [::stub::opt $o -mode default]
    if {[lsearch -exact {default out_of_context} $mode] < 0} {
        ::stub::fail "read_xdc: -mode is default or out_of_context, got '$mode'"
    }
    dict lappend ::stub::ooc xdc $f
}

proc synth_design {args} {
    lassign [::stub::parse synth_design $args] o pos
    set top [::stub::opt $o -top]
    if {![dict exists $::stub::modules $top]} {
        ::stub::fail "synth_design: no module '$top' among the sources"
    }
    if {[llength [dict get $::stub::ooc verilog]] == 0} {
        ::stub::fail "synth_design: no Verilog read"
    }
    if {![regexp {^(xc7z|xczu|xck26)[0-9A-Za-z-]+$} [::stub::opt $o -part]]} {
        ::stub::fail "synth_design: -part '[::stub::opt $o -part]' is not a Zynq part"
    }
    set mode [::stub::opt $o -mode default]
    if {[lsearch -exact {default out_of_context} $mode] < 0} {
        ::stub::fail "synth_design: -mode is default or out_of_context"
    }
    # Constraints are applied at synthesis: evaluate them against the top's ports now.
    dict set ::stub::ooc top $top
    foreach f [dict get $::stub::ooc xdc] {
        uplevel #0 [list source $f]
    }
    dict set ::stub::ooc synthesized 1
}

proc get_ports {args} {
    lassign [::stub::parse get_ports $args] o pos
    if {![dict exists $::stub::ooc top]} {
        ::stub::fail "get_ports: no synthesized design"
    }
    set want [lindex $pos 0]
    foreach p [dict get $::stub::modules [dict get $::stub::ooc top]] {
        if {[lindex $p 0] eq $want} {
            return $want
        }
    }
    ::stub::fail "get_ports: top [dict get $::stub::ooc top] has no port '$want'"
}

proc create_clock {args} {
    lassign [::stub::parse create_clock $args] o pos
    set period [::stub::opt $o -period]
    if {![string is double -strict $period] || $period <= 0} {
        ::stub::fail "create_clock: -period must be a positive number of ns, got '$period'"
    }
    if {[llength [lindex $pos 0]] == 0} {
        ::stub::fail "create_clock: no source object"
    }
    return [::stub::opt $o -name clk]
}

proc ::stub::report {what o} {
    if {![dict exists $::stub::ooc synthesized]} {
        fail "$what: no synthesized design"
    }
    set f [opt $o -file]
    if {$f ne ""} {
        set h [open $f w]
        puts $h "stub $what"
        close $h
    }
}
proc report_utilization {args} {
    lassign [::stub::parse report_utilization $args] o pos
    ::stub::report report_utilization $o
}
proc report_timing_summary {args} {
    lassign [::stub::parse report_timing_summary $args] o pos
    ::stub::report report_timing_summary $o
}

proc ::stub::set_timing {wns whs} {
    variable timing
    set timing [dict create WNS $wns WHS $whs]
}

# Summary for the test harness.
proc ::stub::finish {} {
    puts "VIVADO-STUB OK: $::stub::ncommands Vivado command(s), [dict size $::stub::cells] cell(s), [dict size $::stub::net_pins] net(s), [expr {[dict size $::stub::intf_peer] / 2}] interface connection(s)"
}
