//! Device-to-device variation: N instances of one neuron topology whose
//! devices differ.
//!
//! Each instance is given one device of a library of K devices (each a
//! whole circuit with its own drawn values). The instances of one device are
//! one [`NeuronKernel`], with that device's own rest linearisation and spike
//! map, so variation costs what K small kernels cost, not what N unshared
//! ones would: a spike map is only worth building when many instances
//! replay from it.

use super::{
    check_advance_args, KernelStats, NeuronError, NeuronKernel, NeuronModel, NeuronOptions,
    SpikeMap,
};
use crate::circuit::Circuit;
use std::sync::Arc;

/// N instances, instance i built from device `device_of[i]`.
pub struct VariedKernel {
    /// One kernel per device that has instances.
    kernels: Vec<NeuronKernel>,
    /// The instance index (in 0..N) of each kernel's local instances.
    members: Vec<Vec<usize>>,
    /// Per kernel: its instances' input currents of the current step.
    inputs: Vec<Vec<f64>>,
    spikes: Vec<(usize, f64)>,
    v_mem: Vec<f64>,
}

impl VariedKernel {
    /// `devices[k]` is device k and the spike map its kernels replay from
    /// (None: the kernel builds its own as it goes); `device_of[i]` < K is
    /// the device of instance i.
    pub fn new(
        devices: &[(&Circuit, Option<Arc<SpikeMap>>)],
        device_of: &[usize],
    ) -> Result<Self, NeuronError> {
        let mut members = vec![Vec::new(); devices.len()];
        for (i, &k) in device_of.iter().enumerate() {
            members
                .get_mut(k)
                .ok_or_else(|| {
                    NeuronError::InvalidOptions(format!(
                        "instance {i} is given device {k} of {}",
                        devices.len()
                    ))
                })?
                .push(i);
        }
        let mut kernels = Vec::new();
        let mut used = Vec::new();
        for ((circuit, map), m) in devices.iter().zip(members) {
            if m.is_empty() {
                continue;
            }
            let mut kernel =
                NeuronKernel::new(circuit, m.len(), NeuronOptions::from_circuit(circuit))?;
            if let Some(map) = map {
                kernel.use_spike_map(map.clone())?;
            }
            kernels.push(kernel);
            used.push(m);
        }
        let mut v_mem = vec![0.0; device_of.len()];
        for (k, m) in kernels.iter().zip(&used) {
            copy_membranes(k, m, &mut v_mem);
        }
        Ok(VariedKernel {
            inputs: used.iter().map(|m| Vec::with_capacity(m.len())).collect(),
            kernels,
            members: used,
            spikes: Vec::new(),
            v_mem,
        })
    }

    /// Number of distinct devices in use.
    pub fn devices(&self) -> usize {
        self.kernels.len()
    }
}

/// Copy a device kernel's membrane voltages to its instances' places.
fn copy_membranes(kernel: &NeuronKernel, members: &[usize], v_mem: &mut [f64]) {
    for (&i, &v) in members.iter().zip(kernel.membrane_voltages()) {
        v_mem[i] = v;
    }
}

/// An error of a kernel's local instance, renamed to the instance's index.
fn renumber(e: NeuronError, members: &[usize]) -> NeuronError {
    let global = |local: usize| members.get(local).copied().unwrap_or(local);
    match e {
        NeuronError::StepFailed {
            instance,
            time,
            step,
            detail,
        } => NeuronError::StepFailed {
            instance: global(instance),
            time,
            step,
            detail,
        },
        NeuronError::InvalidInput { instance, value } => NeuronError::InvalidInput {
            instance: global(instance),
            value,
        },
        other => other,
    }
}

impl NeuronModel for VariedKernel {
    fn len(&self) -> usize {
        self.v_mem.len()
    }

    fn advance(
        &mut self,
        dt: f64,
        input_currents: &[f64],
        spikes_out: &mut Vec<(usize, f64)>,
    ) -> Result<(), NeuronError> {
        check_advance_args(self.v_mem.len(), dt, input_currents)?;
        self.spikes.clear();
        for ((kernel, members), inputs) in self
            .kernels
            .iter_mut()
            .zip(&self.members)
            .zip(&mut self.inputs)
        {
            inputs.clear();
            inputs.extend(members.iter().map(|&i| input_currents[i]));
            let start = self.spikes.len();
            kernel
                .advance(dt, inputs, &mut self.spikes)
                .map_err(|e| renumber(e, members))?;
            for s in &mut self.spikes[start..] {
                s.0 = members[s.0];
            }
            copy_membranes(kernel, members, &mut self.v_mem);
        }
        // By instance, then time: each kernel's spikes are already in time
        // order per instance, and the sort is stable.
        self.spikes.sort_by_key(|s| s.0);
        spikes_out.extend_from_slice(&self.spikes);
        Ok(())
    }

    fn reset(&mut self) {
        for (kernel, members) in self.kernels.iter_mut().zip(&self.members) {
            kernel.reset();
            copy_membranes(kernel, members, &mut self.v_mem);
        }
    }

    fn membrane_voltages(&self) -> &[f64] {
        &self.v_mem
    }

    fn energy_dissipated(&self) -> Option<f64> {
        self.kernels.iter().map(|k| k.energy_dissipated()).sum()
    }

    fn solver_stats(&self) -> Option<KernelStats> {
        let mut total = KernelStats::default();
        for k in &self.kernels {
            total += k.stats();
        }
        Some(total)
    }
}
