"""Fitting of results files into the device parameter file (``docs/device-file.md``).

Entry points: ``fitting.campaign.fit_campaign`` fits the results files of one campaign,
``fitting.device_file.write_device_file`` writes the validated document atomically, and
``fitting.device_file.load_device_file`` reads and validates a device file. One model
family lives in each module: ``decay_models`` (exponential and stretched exponential),
``decay_factor`` (Lambda and its sigmoid in bias), ``df_models`` (the dF surface) and
``pulse_energy`` (the power law).
"""
