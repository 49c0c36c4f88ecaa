import { transferScenario } from '../scenario.mjs';

transferScenario(29);
